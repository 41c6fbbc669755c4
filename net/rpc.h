/*
 * rpc.h - the gateway's network protocol (proto/crossgate.proto, "network
 * protocol"): frames over a TLS connection, and the checked decoding of
 * Request and Response messages.
 *
 * Every frame read states its limit; the length is checked against it
 * before anything is allocated, and an oversized frame is refused unread.
 * Decoding checks more than protobuf does: the version, that exactly one
 * operation is set, and every string field's length and alphabet, so that
 * the server never acts on (or logs) an unchecked field.
 */
#ifndef CG_RPC_H
#define CG_RPC_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "net/tls.h"
#include "proto/crossgate.pb-c.h"

#define RPC_VERSION 1
#define RPC_CHUNK_MAX (64 * 1024)           /* bytes of data in one Chunk */
#define RPC_RESPONSE_MAX (1024 * 1024)      /* a client's cap on one response frame */
#define RPC_NAME_MAX 32                     /* purposes and partner ids */
#define RPC_DELIVERY_MAX (4ull << 30)       /* bytes of one sealed audience delivery */
#define RPC_RULE_MAX 4096                   /* bytes of an audience rule (= RULE_TEXT_MAX) */
#define RPC_SEGMENT_MAX 6144                /* bytes of a segment's CSV, and of its sidecar (a request is small) */
#define RPC_MESSAGE_MAX 512                 /* Error.message */
#define RPC_CHECKPOINT_MAX 8192             /* AuditRecord.checkpoint */
#define RPC_EVENT_MAX (64 * 1024)           /* AuditRecord.event */
#define RPC_WITNESS_MAX 256                 /* AuditCosignRequest.witness_key, AuditCosignature.witness */
#define RPC_QUERY_GROUP_MAX 8               /* QueryRequest.group_by (query.h: QUERY_GROUP_MAX) */
#define RPC_QUERY_METRIC_MAX 16             /* QueryRequest.metrics (query.h: QUERY_METRIC_MAX) */
#define RPC_COSIG_LINE_MAX 256              /* a cosignature line (note.h: NOTE_COSIG_LINE_MAX) */
#define RPC_PROOF_MAX (256 * 1024)          /* AuditConsistencyResult.proof (consistency.h: CONSISTENCY_FILE_MAX) */

/*
 * Read one frame: wait for its first byte until first_deadline (the idle or
 * handshake budget), then for the whole frame for read_ms more.  *buf grows
 * to at most max (caller frees).  Returns 1 with *len set, 0 on a clean end
 * of stream before the first byte, or an error: CG_ERR_LIMIT ("frame of N
 * bytes is over the limit of M bytes"), CG_ERR_INCOMPLETE (closed inside a
 * frame), CG_ERR_IO (timeout: tls_timed_out(), or a failure).
 */
int rpc_read_frame(struct tls_conn *c, size_t max, unsigned char **buf, size_t *cap, size_t *len,
    int64_t first_deadline, uint32_t read_ms, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4, 5);

/* Pack msg and write it as one frame (header and payload in one TLS write). */
int rpc_write_msg(struct tls_conn *c, const ProtobufCMessage *msg, int64_t deadline, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/* Decode and check (caller frees with crossgate__request__free_unpacked / ..._response_...). */
int rpc_request_parse(const unsigned char *buf, size_t len, Crossgate__Request **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(3);
int rpc_response_parse(const unsigned char *buf, size_t len, Crossgate__Response **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(3);

/* "push", "export", "audit_fetch", "stats", "audit_cosign", "query", "audit_consistency" or "unknown". */
const char *rpc_op_name(const Crossgate__Request *req) CG_NONNULL(1);

/* Send an Error response (best effort is the caller's choice: the result says whether it went out). */
int rpc_send_error(struct tls_conn *c, const char *code, const char *operation, const char *message,
    int keep_open, int64_t deadline, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/* Names sent in requests: [a-z0-9_-]{1,RPC_NAME_MAX}. */
int rpc_name_ok(const char *s);

#endif
