/* SPDX-License-Identifier: MIT */
/*
 * A QR code as an inline SVG image, made here with libqrencode (as latchctl
 * draws it on a terminal): no image service sees the secret it carries, and
 * the page needs no script, no data: URL and no second request. One path of
 * unit squares (run-length joined along each row) on a white square with
 * the 4-module quiet zone scanners need; crisp at any zoom.
 */
#include <qrencode.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "macro.h"
#include "policy.h"

#define QUIET 4

char *http_qr_svg(const char *text, const char *label) {
        QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
        char *out = NULL, *path = NULL;
        size_t len = 0;
        FILE *f;

        if (!qr)
                return NULL;
        int w = qr->width, size = w + 2 * QUIET;
        /* The path names every dark module: it carries the secret too, so
         * its buffer is wiped. */
        f = open_memstream(&path, &len);
        if (!f) {
                QRcode_free(qr);
                return NULL;
        }
        for (int y = 0; y < w; y++)
                for (int x = 0; x < w;) {
                        if (!(qr->data[y * w + x] & 1)) {
                                x++;
                                continue;
                        }
                        int run = 1;
                        while (x + run < w && (qr->data[y * w + x + run] & 1))
                                run++;
                        fprintf(f, "M%d %dh%dv1h-%dz", x + QUIET, y + QUIET, run, run);
                        x += run;
                }
        bool ok = fflush(f) == 0;
        fclose(f);
        sodium_memzero(qr->data, (size_t) w * (size_t) w);
        QRcode_free(qr);
        if (!ok || !path) {
                if (path)
                        sodium_memzero(path, len);
                free(path);
                return NULL;
        }
        _cleanup_free_ char *l = http_html_escape(label ? label : "QR code");
        if (!l || asprintf(&out,
                           "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"qr\" role=\"img\" aria-label=\"%s\" "
                           "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" shape-rendering=\"crispEdges\" "
                           "style=\"display:block;margin:1rem auto;width:100%%;max-width:16rem;height:auto\">"
                           "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"%s\"/></svg>",
                           l, size, size, size * 6, size * 6, size, size, path) < 0)
                out = NULL;
        sodium_memzero(path, len);
        free(path);
        return out;
}
