/* SPDX-License-Identifier: MIT */
/*
 * A QR code as an inline SVG image, made here with libqrencode (in a child
 * process, qr.h; as latchctl draws it on a terminal): no image service sees the secret it carries, and
 * the page needs no script, no data: URL and no second request. One path of
 * unit squares (run-length joined along each row) on a white square with
 * the 4-module quiet zone scanners need; crisp at any zoom.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "macro.h"
#include "policy.h"
#include "qr.h"

#define QUIET 4

/* The most characters one run of dark modules takes in the path:
 * "M%d %dh%dv1h-%dz" with numbers of at most 3 digits (a QR code is at most
 * 177 modules wide). */
#define RUN_MAX (1 + 3 + 1 + 3 + 1 + 3 + 4 + 3 + 1)

static const char svg_format[] =
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"qr\" role=\"img\" aria-label=\"%s\" "
        "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" shape-rendering=\"crispEdges\" "
        "style=\"display:block;margin:1rem auto;width:100%%;max-width:16rem;height:auto\">"
        "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"%s\"/></svg>";

/* The path and the image carry the secret too: both are written into
 * buffers of their final size (a growing buffer, as open_memstream() or
 * asprintf() keep, would free unwiped copies), wiped before they are freed. */
char *http_qr_svg(const char *text, const char *label) {
        struct qr_modules qr;
        char *out = NULL, *path = NULL;
        size_t len = 0, cap;

        if (qr_modules_make(text, &qr) < 0)
                return NULL;
        int w = qr.width, size = w + 2 * QUIET;
        /* at most one run for every other module of a row, and one more */
        cap = (size_t) w * ((size_t) w / 2 + 1) * RUN_MAX + 1;
        path = malloc(cap);
        if (!path) {
                qr_modules_done(&qr);
                return NULL;
        }
        path[0] = '\0';
        for (int y = 0; y < w; y++)
                for (int x = 0; x < w;) {
                        if (!qr.dark[y * w + x]) {
                                x++;
                                continue;
                        }
                        int run = 1;
                        while (x + run < w && qr.dark[y * w + x + run])
                                run++;
                        int k = snprintf(path + len, cap - len, "M%d %dh%dv1h-%dz", x + QUIET, y + QUIET, run, run);
                        if (k > 0 && (size_t) k < cap - len)
                                len += (size_t) k;
                        x += run;
                }
        qr_modules_done(&qr);

        _cleanup_free_ char *l = http_html_escape(label ? label : "QR code");
        int n = l ? snprintf(NULL, 0, svg_format, l, size, size, size * 6, size * 6, size, size, path) : -1;
        if (n >= 0 && (out = malloc((size_t) n + 1)) &&
            snprintf(out, (size_t) n + 1, svg_format, l, size, size, size * 6, size * 6, size, size, path) != n) {
                free(out);
                out = NULL;
        }
        sodium_memzero(path, cap);
        free(path);
        return out;
}
