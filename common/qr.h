/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <stdlib.h>

/*
 * The modules of a QR code (error correction level M, 8-bit mode), made by
 * libqrencode in a child process: what it encodes here is an otpauth:// URI,
 * which carries a second factor's key, and libqrencode copies its input into
 * blocks it frees without wiping. Made in a child, those copies end with it;
 * this process only ever holds the finished modules, which the caller wipes.
 */
struct qr_modules {
        int width;     /* modules on a side (21 to 177) */
        uint8_t *dark; /* width * width bytes, row by row: 1 dark, 0 light */
};

/* 0, or a negative errno (-EINVAL: the text does not fit in a QR code). */
int qr_modules_make(const char *text, struct qr_modules *ret);

/* Wipes and frees the modules; accepts an empty one. */
void qr_modules_done(struct qr_modules *q);
