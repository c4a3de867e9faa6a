/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * UTF-8 as latch's escapers and checkers read it: one decoder and one idea
 * of which code points are not text to show, shared by latchd's log escaper
 * (log_escape()), its check of plugin prompts, latchctl's terminal output
 * and latch-http's log quoting, so that they cannot drift apart.
 *
 * Library code: no state, thread-safe.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The length (1 to 4) of the valid UTF-8 sequence at p, with its code point
 * in *ret_cp; 0 when p starts no valid sequence (a stray continuation byte,
 * an overlong form, a surrogate, beyond U+10FFFF, or cut short). p must be
 * NUL-terminated: a NUL ends a cut sequence, and nothing past it is read. */
size_t utf8_decode(const char *p, uint32_t *ret_cp);

/* Code points that move, reorder or hide text rather than show it: C1
 * controls (U+0080-U+009F, the 8-bit CSI and OSC among them), the line and
 * paragraph separators U+2028/U+2029, the bidirectional embeddings,
 * overrides and isolates (U+202A-U+202E, U+2066-U+2069). A prompt may not
 * hold them (latchd refuses it): they let a plugin, or a PAM module the pam
 * plugin relays, make a prompt read as something else. */
bool utf8_cp_deceives(uint32_t cp);

/* utf8_cp_deceives(), and the invisible format characters (U+200B-U+200F,
 * U+2060-U+206F, U+FEFF): what an escaper writes as \uXXXX rather than
 * as is. (Prompts may hold the invisible ones: joiners are part of some
 * scripts' spelling.) */
bool utf8_cp_escaped(uint32_t cp);
