/*
 * config_table.h — internal to src/config: the one table of configuration
 * keys (config_table.c) and what its hooks share with the YAML walker
 * (config.c) and the printer (config_print.c).
 *
 * Why a table. Every key is one row: its dotted path, type, field, bounds,
 * choices and help text. The walker parses and range-checks by the row, the
 * printer writes the resolved value by the row, and `--help-config` lists
 * the rows, so the parser, the validation, the printed configuration and the
 * help cannot drift apart. Defaults are the SweepConfig that config_init
 * fills (from the layers' own *_default functions); help prints them from
 * there through the same formatter as config_print.
 *
 * Rows for list elements that are mappings (grid.clr) have paths
 * "grid.clr[].mode" and offsets into the element (ClrSpec), not SweepConfig.
 */
#ifndef CTSWEEP_CONFIG_TABLE_H
#define CTSWEEP_CONFIG_TABLE_H

#include <libfyaml.h>
#include <stddef.h>

#include "config/config.h"

typedef enum {
    CK_SECTION,  // a mapping of further rows (path prefix "<path>.")
    CK_SIZE,     // size_t, an integer within [min, max]
    CK_U32,      // uint32_t
    CK_INT,      // int
    CK_U64,      // uint64_t, any integer >= 0 (seeds)
    CK_MIB,      // size_t bytes, written as an integer number of MiB
    CK_NUM,      // double within the bounds
    CK_BOOL,     // int, true or false
    CK_ENUM,     // one of choices, parsed by the layer's own *_parse
    CK_STR,      // char[size]
    CK_PATH,     // char[size]: relative to the config file's folder, must exist; stored absolute
    CK_PAIR,     // [a, b] of numbers into off and off2, a <= b
    CK_LIST,     // a list of elem (a scalar type, or CK_SECTION for mappings)
    CK_SPECIAL,  // parsed and printed by the row's hooks
} ConfigType;

enum {
    CKF_REQUIRED = 1u << 0,  // must be given (within its section, when the section is)
    CKF_MIN_OPEN = 1u << 1,  // the lower bound itself is excluded
    CKF_MAX_OPEN = 1u << 2,  // the upper bound itself is excluded
    CKF_UNIQUE = 1u << 3,    // list: no value twice
    CKF_NOCOUNT = 1u << 4,   // list: fixed length, no count field
    CKF_NOPRINT = 1u << 5,   // printed by its parent's hook
    CKF_DIR = 1u << 6,       // path: a folder
    CKF_FILE = 1u << 7,      // path: a regular file
    CKF_OMIT_EMPTY = 1u << 8,  // string: not printed when empty
};

typedef struct ConfigKey ConfigKey;
typedef struct ConfigCtx ConfigCtx;

// A growing string for the printer and help.
typedef struct {
    char *s;
    size_t n, cap;
} ConfigBuf;

void cbuf_printf(ConfigBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cbuf_free(ConfigBuf *b);
// s as a YAML scalar: plain when that reads back as the same string, else double-quoted.
void cbuf_yaml_str(ConfigBuf *b, const char *s);
// The shortest decimal form that reads back as exactly v.
void cbuf_num(ConfigBuf *b, double v);
// The value of row k in the struct at base, in YAML flow style.
void cbuf_value(ConfigBuf *b, const ConfigKey *k, const void *base);
// What a value of type t must be: "an integer in [1, 4096]", "one of adam,
// adamw"; plural: "integers in [1, 4096]" (list elements).
void config_describe(char *out, size_t cap, const ConfigKey *k, ConfigType t, int plural);
// User text for a message: control characters replaced, cut after
// CONFIG_SHOW_MAX bytes.
#define CONFIG_SHOW_MAX 48
void config_show_text(char *out, size_t cap, const char *s, size_t len);
// "mode" of "grid.clr[].mode".
const char *config_last_part(const char *path);

struct ConfigKey {
    const char *path;
    ConfigType type;
    size_t off, size;  // the field within its base struct
    size_t off2;       // CK_PAIR: the second number; CK_LIST: the size_t count
    double min, max;   // bounds of numbers, integers and list elements
    unsigned flags;
    // CK_LIST
    ConfigType elem;
    size_t elem_size, min_n, max_n;
    void (*elem_init)(void *elem);
    int (*elem_equal)(const void *a, const void *b);
    int (*elem_finish)(ConfigCtx *c, void *elem, int line, const char *key);
    // CK_ENUM: NULL-terminated; parse writes the field
    const char *const *choices;
    int (*parse_enum)(const char *s, void *out);
    // After a value (or each list element) is parsed: more checks.
    int (*check)(ConfigCtx *c, const ConfigKey *k, void *field, int line, const char *key);
    // CK_SPECIAL
    int (*special)(ConfigCtx *c, const ConfigKey *k, struct fy_node *n, int line, const char *key);
    void (*format)(ConfigBuf *b, const ConfigKey *k, const void *base);
    const char *type_note;  // CK_SPECIAL: its type in the help
    // Printing: shown unless show() says 0; then hidden_note is printed as a comment.
    int (*show)(const SweepConfig *cfg);
    const char *hidden_note;
    const char *def_note;  // the help's default when it is not a plain value
    const char *help;
    // When set, these build the notes (hidden_note and def_note alike) and
    // the help at run time, for text that lists the registry's models.
    const char *(*note_fn)(void);
    const char *(*help_fn)(void);
};

static inline const char *config_key_help(const ConfigKey *k) { return k->help_fn ? k->help_fn() : k->help; }
static inline const char *config_key_hidden_note(const ConfigKey *k) {
    return k->note_fn ? k->note_fn() : k->hidden_note;
}
static inline const char *config_key_def_note(const ConfigKey *k) { return k->note_fn ? k->note_fn() : k->def_note; }

extern const ConfigKey config_keys[];
extern const size_t config_n_keys;
#define CONFIG_MAX_KEYS 128

struct ConfigCtx {
    const char *name;  // the file name in messages
    char dir[4096];    // its folder, for relative paths
    SweepConfig *cfg;
    CtError *err;
    int line[CONFIG_MAX_KEYS];  // 1-based line where each row was given, 0 when not
    int stored;                 // config_parse_stored: a weights file may be gone
};

// "name:line: key: message" into c->err; returns -1.
int config_fail(ConfigCtx *c, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
// Row index of path, -1 when none.
int config_key_index(const char *path);
// The line where path was given, 0 when it was not.
int config_key_line(const ConfigCtx *c, const char *path);
// Walks a mapping node (NULL or a null scalar: empty) against the rows under
// tprefix; keys are named dprefix.key in messages; fields are in base.
int config_walk_mapping(ConfigCtx *c, struct fy_node *map, const char *tprefix, const char *dprefix, void *base,
                        int line);
// Parses one scalar of type t (bounds and choices from k) into field.
int config_parse_scalar(ConfigCtx *c, const ConfigKey *k, ConfigType t, struct fy_node *n, int line,
                        const char *key, void *field);
// The 1-based line of a node, or fallback when it has none (empty values, {}).
int config_node_line(struct fy_node *n, int fallback);
// True for no value: a missing node, an empty plain scalar, ~ or null.
int config_node_is_null(struct fy_node *n);
// "a list", "a mapping", "a scalar" or "no value", for messages.
const char *config_node_kind(struct fy_node *n);
// Checks made after the whole document: keys that depend on each other.
int config_finish(ConfigCtx *c);
// The element defaults of grid.clr.
void config_clr_default(ClrSpec *s);

#endif
