/*
 * policy.h - the data-sharing agreement, parsed from YAML with libfyaml.
 *
 *   version: 1
 *   name: k-g-cross-marketing
 *   k: 10                          # kept for older policies; no release uses it (default 10)
 *   default_phone_country: CN      # ISO 3166-1 alpha-2
 *   phone_matching: unique         # unique (default): a phone pairs two users across partners
 *                                  # when they are its only compatible pair (gateway/join.h);
 *                                  # never: only emails pair users (no false pair from a
 *                                  # shared phone, and no pair of a person who gave one
 *                                  # partner only a phone)
 *   email:                         # provider rules for normalization
 *     gmail_dots: true
 *     plus_tags: true              # gmail/googlemail "+tag"
 *     plus_tags_all: false         # "+tag" for every provider
 *     googlemail: true             # googlemail.com == gmail.com
 *   purposes: [match, analytics, marketing]   # bit i = i-th purpose; match and analytics required
 *   partners:
 *     - id: k                      # [a-z0-9_-]{1,32}
 *       name: Paid-knowledge platform
 *       retention_days: 730          # optional: records whose consent_at is older are
 *                                    # erased by `gateway purge` and the server
 *       signing_key: "ed25519-public 3f9a0c1d2e4b5a69 BASE64..."   # keyfile.h key line
 *       columns:
 *         - {name: user_id, type: string, role: local_id}
 *         - {name: email, type: string, role: identifier, kind: email}
 *         - {name: phone, type: string, role: identifier, kind: phone}
 *         - {name: age, type: int, min: 13, max: 120, role: quasi_identifier,
 *            generalize: {band: 10}}
 *         - {name: region, type: string, role: quasi_identifier,
 *            generalize: {map: {CN-BJ: North, CN-SH: East}, other: Other}}
 *         - {name: consent, type: purposes, role: consent}
 *         - {name: consent_at, type: timestamp, role: consent_time}
 *         - {name: course_spend_cents, type: int, min: 0, max: 100000000, role: feature}
 *         - {name: top_course_category, type: category, values: [tech, art], role: feature}
 *         - {name: coupon_code, type: string, role: feature, purposes: [marketing]}
 *
 * Types: string, int (signed 64-bit, optional min/max), category (one of
 * `values`), purposes (';'-separated purpose names), timestamp (ISO 8601:
 * YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS with optional fraction, 'Z' or +HH:MM;
 * a space may replace the 'T'; no zone means UTC).
 * Roles: local_id (never leaves the partner), identifier (kind email or
 * phone; tokenized, never sent), consent (exactly one, type purposes),
 * consent_time (exactly one, type timestamp), feature, quasi_identifier
 * (needs `generalize`: band (int) or map (string/category) with `other`).
 * `purposes:` on a feature or quasi-identifier limits the exports that may
 * use the column to those purposes (data minimization); `purposes: []` means
 * the column is never shared: the agent does not send it and the gateway
 * refuses it.  Without the key a column serves every purpose.
 * `required: false` lets a feature or quasi-identifier cell be empty;
 * identifiers are always optional one by one, but a row needs at least one.
 *
 * The network (`crossgate gateway serve`; all optional for file-only use):
 *
 *   network:
 *     ca: pki/ca.pem               # the only CA trusted for client and server
 *                                  # certificates; relative to this file
 *     listen: "127.0.0.1:7443"     # HOST:PORT (IPv4 or [IPv6]); port 0 = any free port
 *     limits:                      # every one optional; defaults below
 *       frame_max: 1048576         # receive buffer of a push (>= 65600); batch frames stay
 *                                  # capped at 4 KiB (header) and 64 KiB (docs/PROTOCOL.md §2.2)
 *       preauth_frame_max: 16384   # bytes of every request frame
 *       push_max_bytes: 4294967296 # bytes of one pushed batch
 *       max_connections: 64        # concurrent; more are closed at once
 *       max_startups: "16:30:32"   # unauthenticated connections: from `start` on, a new one
 *                                  # is dropped with probability rate% rising to 100% at
 *                                  # `full` (< max_connections: the rest is reserved for
 *                                  # principals); default full = max_connections / 2,
 *                                  # start = full / 2, rate 30
 *       per_source_max: 8          # unauthenticated connections of one IPv4 address or
 *                                  # IPv6 /64 (0 = no limit); default min(8, full)
 *       trusted_sources: ["192.0.2.7", "198.51.100.0/24", "2001:db8:1::/48"]
 *                                  # the partners' egress networks (IPv6 prefixes up to
 *                                  # /64): they get pre-auth slots of their own that a
 *                                  # flood from elsewhere cannot take; none by default
 *       trusted_startups: 8        # those slots, outside max_startups (full +
 *                                  # trusted_startups < max_connections); default
 *                                  # min(8, (max_connections - full) / 2)
 *       penalty_max: 600           # seconds a source that timed out or failed handshakes
 *                                  # may be refused for (0 = no penalties; gateway/admit.h)
 *       handshake_timeout: 5       # seconds for the whole TLS handshake (and, for a
 *                                  # certificate naming no principal, its first request)
 *       read_timeout: 30           # seconds for one whole frame once it started; a push
 *                                  # must deliver 1 MiB of frames per read_timeout
 *       idle_timeout: 60           # seconds waiting for the next request
 *     heartbeat_interval: 300      # seconds between "heartbeat" audit events
 *   principals:                    # who may connect, matched on the certificate
 *     - name: k-agent              # [a-z0-9_-]{1,32}, unique; names the actor in the audit log
 *       role: partner              # partner | analyst | auditor
 *       identity: "crossgate:partner:k"   # the client certificate's identity (net/pki.h):
 *                                  # its crossgate: SAN URI, else its subject CN; unique
 *       partner: k                 # role partner: the only partner it may push for
 *     - name: analyst
 *       role: analyst
 *       identity: "crossgate:analyst:analyst"
 *       purposes: [analytics]      # role analyst: the export purposes it may use ('match' never)
 *     - {name: auditor, role: auditor, identity: "crossgate:auditor:auditor"}
 *
 * Roles: partner = push batches of its own partner id; analyst = pull exports
 * for its purposes; auditor = fetch audit events and checkpoints.  Nothing
 * else is allowed to anyone.  An analyst may also have:
 *       row_exports: [analytics]   # purposes it may take synthetic row releases for (default none:
 *                                  # aggregates only); each must be one of its purposes
 *       budget_rho: 2.0            # its privacy budget per dataset (default privacy.budget_rho)
 *       max_exports: 5             # row releases it may take in all, an extra cap beside its
 *                                  # budget (default privacy.max_exports)
 *
 * Privacy of outputs (all optional; defaults shown):
 *
 *   privacy:
 *     threshold: 20                # released groups need a noisy count >= this
 *     query_rho: 0.05              # zCDP rho one query is charged unless it asks for another
 *     export_rho: 0.1              # zCDP rho one synthetic row release (`crossgate export`)
 *                                  # is charged unless it asks for another; same ledger
 *     budget_rho: 1.0              # cap of rho per analyst and dataset (the joined partner pair)
 *     partition_delta: 0.000001    # largest delta allowed for group keys taken from the data
 *     l: 3                         # kept for older policies; no release uses it
 *     suppression_limit: 0.05      # kept for older policies; no release uses it
 *     max_exports: 10              # row releases per analyst (default; per-analyst override above)
 *
 * Audiences (`crossgate audience`, gateway/audience.h; all optional, defaults shown):
 *
 *   marketing:
 *     min_audience: 1000           # an audience smaller than this (by a noisy count) is refused
 *     receivers: [k, g]            # partners that may receive audiences (default none: every
 *                                  # audience is refused)
 *     sources: [k, g]              # partners whose columns a rule may read (default none);
 *                                  # an audience's two partners must both be sources
 *     audience_rho: 0.05           # zCDP rho of an audience's noisy size (default privacy.query_rho)
 *     refusal_noise: 50            # scale of the discrete Laplace noise the refusal test adds
 *     max_refusals: 20             # refusals an analyst may get in all; then no more audiences
 *                                  # (0: no audience at all)
 *     holdout: 0.5                 # share of an experiment's audience held out as control
 *     value_cap: 10000             # a subject's outcome value in a lift, clamped (cents, 1..1e9)
 *     lift_rho: 0.05               # rho of an experiment's lift (default privacy.query_rho)
 *
 * Column keys for outputs: `public: true` (a quasi-identifier or category
 * feature whose generalized values may be query group keys: the domain is
 * enumerated from the policy, so no key comes from the data); `bounds: [lo,
 * hi]` (an int feature's clamp for sums, means and histograms, and the range
 * a synthetic row release cuts into bins; needed for them); `sensitive:
 * true` (kept for older policies; no release uses it).  A band may be a
 * hierarchy, `band: [10, 20, 50]`: a synthetic release bins by its finest
 * level with at most 100 bands between the column's min and max.
 *
 * Every problem found is reported as "file:line:column: reason".
 */
#ifndef CG_POLICY_H
#define CG_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "base/normalize.h"

#define POLICY_PURPOSES_MAX 32
#define POLICY_FILE_MAX (1024 * 1024)
#define POLICY_DEFAULT_K 10
#define POLICY_K_MAX 1000000
#define POLICY_PARTNERS_MAX 64
#define POLICY_COLUMNS_MAX 256
#define POLICY_VALUES_MAX 1024       /* category values, map entries per column */
#define POLICY_VALUE_MAX 1024        /* bytes in one cell, and in one string of the policy */
#define POLICY_PROBLEMS_MAX 100      /* then one "too many problems" line */
#define POLICY_BANDS_MAX 8           /* levels of a band hierarchy */
#define POLICY_BOUND_MAX 1000000000000LL   /* |bounds| of an aggregated column, so that sums stay exact */

enum policy_type {
	POLICY_TYPE_STRING = 1,
	POLICY_TYPE_INT,
	POLICY_TYPE_CATEGORY,
	POLICY_TYPE_PURPOSES,
	POLICY_TYPE_TIMESTAMP,
};

enum policy_role {
	POLICY_ROLE_LOCAL_ID = 1,
	POLICY_ROLE_IDENTIFIER,
	POLICY_ROLE_CONSENT,
	POLICY_ROLE_CONSENT_TIME,
	POLICY_ROLE_FEATURE,
	POLICY_ROLE_QUASI,
};

enum policy_gen {
	POLICY_GEN_NONE = 0,
	POLICY_GEN_BAND,      /* int: [lo, lo+band-1] as "20-29" */
	POLICY_GEN_MAP,       /* string/category: value -> group, anything else -> `other` */
};

struct policy_map_entry {
	char *from;
	char *to;
};

struct policy_column {
	char *name;
	enum policy_type type;
	enum policy_role role;
	uint32_t id_kind;            /* TOKEN_KIND_EMAIL / TOKEN_KIND_PHONE for identifiers */
	int required;                /* default 1 for features, quasi-identifiers, consent */
	int has_min, has_max;
	int64_t min, max;
	char **values;               /* category values */
	size_t nvalues;
	enum policy_gen gen;
	int64_t band;                /* the finest band (bands[0]) */
	int64_t bands[POLICY_BANDS_MAX];   /* generalization hierarchy: `band: [10, 20, 50]`, increasing */
	size_t nbands;
	struct policy_map_entry *map;
	size_t nmap;
	char *other;
	int has_purposes;            /* `purposes:` given: the column is shared only for these */
	uint32_t purposes;           /* consent bits of the purposes the column may be used for */
	char **purpose_names;        /* as written, resolved once the policy's purposes are known */
	size_t npurpose_names;
	int purposes_line, purposes_col;
	int is_public;               /* `public: true`: its (generalized) values may be query group keys */
	int has_bounds;              /* `bounds: [lo, hi]`: values are clamped to these in aggregates */
	int64_t lo, hi;
	int sensitive;               /* `sensitive: true`: row exports need l-diversity of this column */
	size_t line;                 /* where it is declared, for messages */
};

#define POLICY_RETENTION_DAYS_MAX 36500

struct policy_partner {
	char *id;
	char *name;
	uint32_t retention_days;     /* records older than this (by consent_at) are purged; 0: kept */
	char *signing_key;           /* the key line as written; see keyfile_parse_public_line */
	unsigned char signing_pub[32];
	unsigned char signing_key_id[8];
	struct policy_column *columns;
	size_t ncolumns;
	size_t line;
};

/* Network defaults (see above). */
#define POLICY_NET_FRAME_MAX_DEFAULT (1024u * 1024)
#define POLICY_NET_FRAME_MAX_MIN (64u * 1024 + 64)      /* a batch record frame must fit */
#define POLICY_NET_PREAUTH_FRAME_MAX_DEFAULT (16u * 1024)
#define POLICY_NET_PREAUTH_FRAME_MAX_MIN 256u
#define POLICY_NET_PUSH_MAX_DEFAULT (4ull * 1024 * 1024 * 1024)
#define POLICY_NET_MAX_CONNECTIONS_DEFAULT 64u
#define POLICY_NET_MAX_CONNECTIONS_MAX 4096u
#define POLICY_NET_HANDSHAKE_TIMEOUT_DEFAULT 5u
#define POLICY_NET_PER_SOURCE_DEFAULT 8u
#define POLICY_NET_TRUSTED_MAX 64          /* = ADMIT_TRUSTED_MAX */
#define POLICY_NET_TRUSTED_STARTUPS_DEFAULT 8u
#define POLICY_NET_PENALTY_MAX_DEFAULT 600u
#define POLICY_NET_READ_TIMEOUT_DEFAULT 30u
#define POLICY_NET_IDLE_TIMEOUT_DEFAULT 60u
#define POLICY_NET_TIMEOUT_MAX 3600u
#define POLICY_NET_HEARTBEAT_DEFAULT 300u
#define POLICY_NET_HEARTBEAT_MAX 86400u
#define POLICY_PRINCIPALS_MAX 1024
#define POLICY_IDENTITY_MAX 256

struct policy_network {
	int present;                 /* the policy has a network section */
	char *ca;                    /* as written */
	char *ca_path;               /* resolved against the policy file's directory */
	char *listen;                /* "HOST:PORT" */
	uint32_t frame_max;
	uint32_t preauth_frame_max;
	uint64_t push_max_bytes;
	uint32_t max_connections;
	uint32_t startups_start, startups_rate, startups_full;   /* max_startups "start:rate:full" (gateway/admit.h) */
	uint32_t per_source_max;     /* pre-auth connections of one source; 0 = no limit */
	int per_source_set;          /* written in the policy (else derived from max_startups) */
	uint32_t penalty_max;        /* seconds a source can be refused for; 0 = no penalties */
	size_t ntrusted;             /* trusted_sources: networks with pre-auth slots of their own */
	struct policy_prefix {
		unsigned char b[16]; /* IPv6, or IPv4 v4-mapped (::ffff:a.b.c.d, bits 96 + n) */
		unsigned bits;
	} trusted[POLICY_NET_TRUSTED_MAX];
	uint32_t trusted_startups;   /* their pre-auth slots (0 without trusted_sources) */
	int trusted_startups_set;
	uint32_t handshake_timeout, read_timeout, idle_timeout;   /* seconds */
	uint32_t heartbeat_interval; /* seconds */
};

enum policy_principal_role {
	POLICY_PRINCIPAL_PARTNER = 1,
	POLICY_PRINCIPAL_ANALYST,
	POLICY_PRINCIPAL_AUDITOR,
};

struct policy_principal {
	char *name;
	enum policy_principal_role role;
	char *identity;
	char *partner;               /* role partner: a partner id of the policy */
	uint32_t purpose_bits;       /* role analyst: bit i = purposes[i]; never 'match' */
	uint32_t row_export_bits;    /* role analyst: purposes it may take row exports for (subset of purpose_bits) */
	int64_t budget_rho_nano;     /* role analyst: privacy budget per dataset; 0 = the policy's default */
	uint32_t max_exports;        /* role analyst: row exports allowed in all (has_max_exports) */
	int has_max_exports;
	size_t line;
};

/* Defaults of the privacy section (see above). */
#define POLICY_THRESHOLD_DEFAULT 20u
#define POLICY_QUERY_RHO_DEFAULT 50000000LL      /* nano-rho: 0.05 */
#define POLICY_EXPORT_RHO_DEFAULT 100000000LL    /* nano-rho: 0.1 */
#define POLICY_BUDGET_RHO_DEFAULT 1000000000LL   /* nano-rho: 1.0 */
#define POLICY_RHO_MAX (1000000LL * 1000000000LL) /* nano-rho: 1e6 */
#define POLICY_PARTITION_DELTA_DEFAULT 1e-6
#define POLICY_L_DEFAULT 3u
#define POLICY_SUPPRESSION_PPM_DEFAULT 50000u    /* 5% */
#define POLICY_MAX_EXPORTS_DEFAULT 10u

struct policy_privacy {
	uint32_t threshold;          /* groups and released cells with a (noisy) count below are withheld */
	int64_t query_rho_nano;      /* what one query is charged unless it asks otherwise */
	int64_t export_rho_nano;     /* what one synthetic row release is charged unless it asks otherwise */
	int64_t budget_rho_nano;     /* cap per analyst and dataset */
	double partition_delta;      /* largest delta of releasing a group key taken from the data */
	uint32_t l;                  /* l-diversity of row exports on each sensitive column */
	uint32_t suppression_ppm;    /* a row export fails rather than suppress more (parts per million) */
	uint32_t max_exports;        /* row exports per analyst */
};

#define POLICY_MIN_AUDIENCE_DEFAULT 1000u
#define POLICY_REFUSAL_NOISE_DEFAULT 50u
#define POLICY_MAX_REFUSALS_DEFAULT 20u
#define POLICY_HOLDOUT_DEFAULT 500000000LL       /* nano: 0.5 */
#define POLICY_VALUE_CAP_DEFAULT 10000           /* an experiment subject's value cap, in cents: 100.00 */

struct policy_marketing {
	int present;                 /* the policy has a marketing section */
	uint32_t min_audience;
	uint64_t receivers;          /* bit i: partners[i] may receive audiences */
	uint64_t sources;            /* bit i: partners[i]'s columns may select an audience */
	int has_sources;
	int64_t audience_rho_nano;   /* 0: privacy.query_rho */
	uint32_t refusal_noise;      /* discrete Laplace scale of the refusal test */
	uint32_t max_refusals;       /* refusals per analyst, in all */
	int64_t holdout_nano;        /* an experiment's control share, in 1e-9 */
	int64_t value_cap;           /* a subject's outcome value in a lift is clamped to [0, value_cap] cents */
	int64_t lift_rho_nano;       /* rho of an experiment's lift release; 0: privacy.query_rho */
};

struct policy {
	int version;
	char *name;
	char *path;
	char *purposes[POLICY_PURPOSES_MAX];   /* index = consent bit */
	size_t npurposes;
	uint32_t k;
	char default_country[3];
	int phone_never;             /* phone_matching: never (0: unique, the default) */
	struct normalize_email_rules email;
	struct policy_partner *partners;
	size_t npartners;
	unsigned char hash[32];      /* SHA-256 of the file's bytes */
	struct policy_network net;   /* defaults filled in even when absent */
	struct policy_principal *principals;
	size_t nprincipals;
	struct policy_privacy privacy; /* defaults filled in even when absent */
	struct policy_marketing marketing; /* defaults filled in even when absent */
};

/* All problems found, one message each ("file:line:col: reason"). Owned by the caller. */
struct policy_problems {
	char **msgs;
	size_t n;
};
void policy_problems_free(struct policy_problems *p);

/*
 * Read, parse and validate the policy at path.  On any problem returns
 * CG_ERR_POLICY (CG_ERR_IO if unreadable) with the first problem in err and,
 * if `problems` is not NULL, every problem appended to it.  Caller owns *out.
 */
int policy_load(const char *path, struct policy **out, struct policy_problems *problems,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
/* The same from memory; `name` stands for the file in messages. */
int policy_parse(const char *name, const char *buf, size_t len, struct policy **out,
    struct policy_problems *problems, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4);
void policy_free(struct policy *p);

const struct policy_partner *policy_partner_find(const struct policy *p, const char *id);
const struct policy_column *policy_column_find(const struct policy_partner *pp, const char *name);
/* May column c be sent, and used for an export for purpose bit `bit` (-1: for any purpose)? */
int policy_column_shared(const struct policy_column *c, int bit);

/* Bit index of a purpose, or -1. */
int policy_purpose_bit(const struct policy *p, const char *purpose);

/* The principal whose identity is exactly `identity` (a certificate's), or NULL. */
const struct policy_principal *policy_principal_find(const struct policy *p, const char *identity);
/* "partner", "analyst", "auditor". */
const char *policy_role_name(enum policy_principal_role role);
/* Whether an analyst principal may export for `purpose` (a purpose of the policy other than match). */
int policy_principal_may_export(const struct policy *p, const struct policy_principal *pr, const char *purpose);

/* May analyst `pr` take a row export for `purpose`? (`row_exports:` lists it.) */
int policy_principal_may_row_export(const struct policy *p, const struct policy_principal *pr, const char *purpose);
/* The analyst's budget cap (nano-rho) and row-export cap, its own or the policy's default. */
int64_t policy_principal_budget(const struct policy *p, const struct policy_principal *pr);
uint32_t policy_principal_max_exports(const struct policy *p, const struct policy_principal *pr);
/* May partner `id` receive audiences / serve as an audience's source (marketing: receivers / sources)? */
int policy_partner_may_receive(const struct policy *p, const char *id) CG_NONNULL(1, 2);
int policy_partner_may_source(const struct policy *p, const char *id) CG_NONNULL(1, 2);
/* The principal named `name`, or NULL. */
const struct policy_principal *policy_principal_by_name(const struct policy *p, const char *name);

/*
 * A decimal such as "0.05" or "2" in nano units (9 fraction digits at most),
 * 0 < value <= max.  0 or CG_ERR_FORMAT / CG_ERR_LIMIT.  Exact: no floating point.
 */
int policy_parse_nano(const char *s, size_t len, int64_t max, int64_t *out) CG_MUST_CHECK CG_NONNULL(1, 4);

/* A cell parsed against its column. */
struct policy_value {
	int is_null;                 /* empty cell in a column that is not required */
	int64_t i;                   /* int value, or unix seconds for a timestamp */
	uint32_t bits;               /* purposes */
	const char *s;               /* string/category: points into the cell */
	size_t slen;
};

/*
 * Parse and check one cell (already trimmed of nothing: the cell as read).
 * Errors are CG_ERR_FORMAT with a reason that never quotes the cell's value
 * ("not an integer", "below min 13", "unknown purpose", "not one of the
 * category's values", "required", ...).  Identifier cells are only checked
 * for length here; normalize.h validates them.
 */
int policy_value_parse(const struct policy *p, const struct policy_column *c, const char *cell,
    size_t len, struct policy_value *out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 5);

/* ISO 8601 as described above, to unix seconds (UTC). */
int policy_parse_time(const char *s, size_t len, int64_t *out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3);

/* Generalize a quasi-identifier value into out: band "20-29", or the mapped group. */
int policy_generalize_int(const struct policy_column *c, int64_t v, char *out, size_t out_size)
    CG_MUST_CHECK CG_NONNULL(1, 3);
/* The band of width `band` holding v, "lo-hi" (floor division). */
int policy_generalize_band(int64_t band, int64_t v, char *out, size_t out_size) CG_MUST_CHECK CG_NONNULL(3);
int policy_generalize_str(const struct policy_column *c, const char *v, size_t len, char *out,
    size_t out_size) CG_MUST_CHECK CG_NONNULL(1, 2, 4);

#endif
