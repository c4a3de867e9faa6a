/* SPDX-License-Identifier: MIT */
/* Fuzzes latchd.conf parsing (conf.c over inih): the input is written as a
 * config file and loaded; every problem must come back as a diagnostic. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void diag(void *userdata, const char *file, unsigned line, const char *message) {
        (*(unsigned *) userdata)++;
        if (!message || !*message)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char dir[] = "/tmp/latch-fuzz-config-XXXXXX";
        static char path[sizeof dir + 16];
        struct config *c = NULL;
        unsigned problems = 0;

        if (path[0] == '\0') {
                if (!mkdtemp(dir))
                        abort();
                snprintf(path, sizeof path, "%s/latchd.conf", dir);
        }
        FILE *f = fopen(path, "we");
        if (!f)
                abort();
        fwrite(data, 1, size, f);
        fclose(f);
        int r = config_load(path, diag, &problems, &c);
        /* Either a config, or at least one reported problem: never a silent
         * refusal. */
        if (r == 0 && !c)
                abort();
        if (r == -EINVAL && problems == 0)
                abort();
        config_free(c);
        return 0;
}
