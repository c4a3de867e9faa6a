/* SPDX-License-Identifier: MIT */
#include "utf8.h"

size_t utf8_decode(const char *s, uint32_t *ret_cp) {
        const unsigned char *p = (const unsigned char *) s;
        unsigned char b = p[0], lo = 0x80, hi = 0xbf;
        size_t len;
        uint32_t cp;

        if (b < 0x80) {
                *ret_cp = b;
                return 1;
        }
        /* The second byte's range excludes overlong forms (after 0xe0 and
         * 0xf0), surrogates (after 0xed) and code points past U+10FFFF
         * (after 0xf4), as RFC 3629's table does. */
        if (b >= 0xc2 && b <= 0xdf) {
                len = 2;
                cp = b & 0x1f;
        } else if (b >= 0xe0 && b <= 0xef) {
                len = 3;
                cp = b & 0x0f;
                if (b == 0xe0)
                        lo = 0xa0;
                else if (b == 0xed)
                        hi = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
                len = 4;
                cp = b & 0x07;
                if (b == 0xf0)
                        lo = 0x90;
                else if (b == 0xf4)
                        hi = 0x8f;
        } else
                return 0;
        /* A NUL fails the range check: never read past it. */
        for (size_t i = 1; i < len; i++) {
                if (p[i] < lo || p[i] > hi)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
                lo = 0x80;
                hi = 0xbf;
        }
        *ret_cp = cp;
        return len;
}

bool utf8_cp_deceives(uint32_t cp) {
        return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
               (cp >= 0x2066 && cp <= 0x2069);
}

bool utf8_cp_escaped(uint32_t cp) {
        return utf8_cp_deceives(cp) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2060 && cp <= 0x206f) ||
               cp == 0xfeff;
}
