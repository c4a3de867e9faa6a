/* SPDX-License-Identifier: MIT */
/*
 * Defaults that must agree across the wire: liblatch waits longer than
 * latchd, with its own defaults, may take to answer (the failure backoff's
 * max_delay plus the stack deadline). Otherwise a throttled client sees
 * LATCH_ERR_TIMEOUT where latchd meant "denied".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "daemon.h"
#include "latch/latch.h"
#include "ops-common.h"

static void test_client_outwaits_daemon(void **state) {
        struct daemon d = { 0 };

        assert_int_equal(config_default(&d.config), 0);
        uint64_t longest_usec = (uint64_t) d.config->throttle_max_delay * 1000000 + ops_stack_deadline_usec(&d);
        print_message("latchd may take %llu ms by default; liblatch waits %u ms\n",
                      (unsigned long long) (longest_usec / 1000), LATCH_DEFAULT_TIMEOUT_MS);
        assert_true((uint64_t) LATCH_DEFAULT_TIMEOUT_MS * 1000 > longest_usec);
        config_free(d.config);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_client_outwaits_daemon),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
