/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The protocol between latchd and latch-worker, the program that runs one
 * plugin line in a process of its own (see worker.c for the worker's side,
 * plugin-isolation.c for latchd's).
 *
 * A stream socket; each message is a frame as on latchd's own socket: a
 * 4-byte big-endian length N (1 <= N <= the reader's limit), then N bytes of
 * one JSON object. latchd speaks first and the two alternate strictly:
 *
 *   latchd → worker   {"open": {"name": NAME, "args": [ARG, ...]}}
 *   worker → latchd   {"log": ...}* then
 *                     {"ready": {"name": NAME, "pid": PID, "outcome": BOOL}}
 *                     or {"error": "one line for humans", "errno": E}
 *
 *   latchd → worker   {"call": "auth"|"account"|"password"|"outcome", "op",
 *                      "service", "user", "password", "oldpassword" and
 *                      "remote" (each absent when none), "now": UNIX_SECONDS,
 *                      "flags": N (password only: the pass's
 *                      enum latch_password_flag), "result": N (outcome
 *                      only), "answers": [STRING|null...] (continuations only)}
 *   worker → latchd   {"log": {"priority": P, "message": TEXT}}* then
 *                     {"result": N, "claims": {NAME: STRING | [STRING...]},
 *                      "items": {"password": STRING|null,
 *                                "oldpassword": STRING|null} (only the items
 *                      the plugin set with host->set_item() during the call),
 *                      "prompts": [{"style": S, "message": M}...] (only
 *                      with result 31, LATCH_INCOMPLETE, when the plugin
 *                      asked)}
 *
 * Conversations: after an answer with "prompts" the worker keeps the
 * request (and the plugin's set_data() state) and accepts only its
 * continuation, the same call with "answers" (one per prompt, null for
 * info/error ones); latchd keeps the worker for that request alone, and
 * kills it when the conversation ends without one.
 *
 * Log lines are the plugin's own (host->log()), sent as they happen; latchd
 * attributes them to the plugin and the request and logs them. "claims" are
 * those the plugin added during that call: a string was set
 * (claim_set_string), an array appended to (claim_append_string); latchd
 * replays them on its request, with its own checks. An outcome call answers
 * {"result": 0}.
 *
 * The worker never trusts the peer with the plugin's file: that comes from
 * its command line only, so a peer of a worker_socket cannot make it load
 * other code. End of stream from latchd ends the worker.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "wire.h"

/* Worker → latchd: a result, a few claims, or one log line. */
#define WORKER_ANSWER_MAX (64U * 1024U)
/* latchd → worker: a request (latchd's own frames are at most 16 MiB). */
#define WORKER_REQUEST_MAX (16U * 1024U * 1024U + 4096U)

/* Reads the payload of the frame whose header is `hdr` and parses it:
 * 0 and a JSON object, -EBADMSG when the frame is empty, longer than `max`
 * or not an object, or wire_recv_all()'s error. The payload (it may hold a
 * password) is wiped. Both sides read their messages with it. */
int worker_recv_payload(int fd, const uint8_t hdr[WIRE_HEADER], uint32_t max, uint64_t deadline, json_t **ret);
