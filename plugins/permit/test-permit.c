/* SPDX-License-Identifier: MIT */

/* permit, loaded through the plugin host: accepts every request. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "plugin-host.h"

static const char *plugin_path;

static void test_results(void **unused) {
        struct plugin_host *h = NULL;
        struct plugin_line *l = NULL, *l2 = NULL;
        struct latch_req *req = NULL;

        assert_int_equal(plugin_host_new("/nonexistent", NULL, &h), 0);
        assert_int_equal(plugin_line_open(h, plugin_path, 0, NULL, &l, NULL), 0);
        assert_string_equal(plugin_line_name(l), "permit");
        /* Arguments change nothing. */
        assert_int_equal(plugin_line_open(h, plugin_path, 1, (const char *const[]){"whatever"}, &l2, NULL), 0);

        assert_int_equal(latch_req_new("login", "wiki", "alice", "pw", NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_SUCCESS);
        assert_int_equal(plugin_line_call(l, STACK_ACCOUNT, req, 0), LATCH_SUCCESS);
        assert_int_equal(plugin_line_call(l2, STACK_AUTH, req, 0), LATCH_SUCCESS);
        assert_int_equal(plugin_line_call(l2, STACK_ACCOUNT, req, 0), LATCH_SUCCESS);
        /* No outcome() and no claims. */
        plugin_line_outcome(l, req, LATCH_AUTH_ERR);
        assert_int_equal(json_object_size(latch_req_claims(req)), 0);

        latch_req_free(req);
        plugin_line_close(l);
        plugin_line_close(l2);
        plugin_host_free(h);
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_results),
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s PATH/permit.so\n", argv[0]);
                return 2;
        }
        plugin_path = argv[1];
        return cmocka_run_group_tests(tests, NULL, NULL);
}
