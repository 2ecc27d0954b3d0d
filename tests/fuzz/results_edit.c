/*
 * results_edit.c — the edit operations of fuzz_results (see results_edit.h):
 * deleting, retyping, reshaping and relinking objects and attributes of the
 * results files through the HDF5 API, and damaging the files themselves
 * (truncation, trailing garbage, replacement, and, only when asked, bytes
 * overwritten inside). Every operation opens its file, edits and closes it,
 * and quietly does nothing when HDF5 refuses the edit.
 */
#define _GNU_SOURCE
#include "results_edit.h"

#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EDIT_MAX_ELEMS 4096  // elements written into a rewritten dataset
#define EDIT_MAX_OWNED 128

typedef struct {
    const EditSpace *s;
    const uint8_t *p;
    size_t n, pos;
    char *owned[EDIT_MAX_OWNED];  // strings made from the input, freed at the end
    size_t n_owned;
} Ed;

// ---- reading the input ----

static void note(const Ed *e, const char *what, const char *a, const char *b) {
    if (e->s->verbose) fprintf(stderr, "  %s %s%s\n", what, a, b);
}

static unsigned in_u8(Ed *e) { return e->pos < e->n ? e->p[e->pos++] : 0; }

static unsigned in_u16(Ed *e) {
    unsigned lo = in_u8(e);
    return lo | in_u8(e) << 8;
}

static void in_bytes(Ed *e, void *out, size_t n) {
    for (size_t i = 0; i < n; i++) ((uint8_t *)out)[i] = (uint8_t)in_u8(e);
}

static char *own(Ed *e, char *s) {
    if (e->n_owned == EDIT_MAX_OWNED) {
        free(s);
        return (char *)"";
    }
    return e->owned[e->n_owned++] = s;
}

// A string of up to 63 input bytes (any bytes; the first NUL ends it).
static const char *in_string(Ed *e) {
    size_t len = in_u8(e) % 64;
    char *s = malloc(len + 1);
    if (!s) abort();
    in_bytes(e, s, len);
    s[len] = '\0';
    return own(e, s);
}

// A value worth trying where a string is read: statuses, ids, file names
// (the space's own), empty, very long, not UTF-8, format directives.
static const char *pick_string(Ed *e) {
    static const char *const fixed[] = {"",        "done",       "pending",    "running",
                                        "failed",  "x",          "%s%s%n%s",   "../sweep.h5",
                                        "/dev/zero", "checkpoints/", "\xff\xfe\x80", "a\tb\nc",
                                        "0123456789abcdef", "0123456789abcdef0"};
    static char long_string[5000];
    if (!long_string[0]) memset(long_string, 'y', sizeof long_string - 1);
    size_t nf = sizeof fixed / sizeof fixed[0];
    size_t k = in_u8(e) % (nf + e->s->n_strings + 2);
    if (k < nf) return fixed[k];
    if (k < nf + e->s->n_strings) return e->s->strings[k - nf];
    return k == nf + e->s->n_strings ? long_string : in_string(e);
}

// ---- choosing what to edit ----

static const char *pick_object(Ed *e, EditFileKind kind) {
    size_t n = e->s->n_objects[kind];
    size_t k = in_u8(e) % (n + 2);
    const char *o = k < n ? e->s->objects[kind][k] : k == n ? "/" : "nonexistent/child";
    note(e, "object", o, "");
    return o;
}

// Splits a pick from the attribute list ("obj@name") into obj and name.
static void pick_attr(Ed *e, EditFileKind kind, char *obj, size_t obj_size, char *name, size_t name_size) {
    size_t n = e->s->n_attrs[kind];
    const char *a = n ? e->s->attrs[kind][in_u8(e) % n] : "/@x";
    const char *at = strchr(a, '@');
    snprintf(obj, obj_size, "%.*s", at ? (int)(at - a) : 0, a);
    if (!obj[0]) snprintf(obj, obj_size, "/");
    snprintf(name, name_size, "%s", at ? at + 1 : a);
    note(e, "attribute", a, "");
}

// ---- types and values ----

static hid_t vlen_str(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static hid_t fixed_str(size_t n, H5T_str_t pad) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    H5Tset_strpad(t, pad);
    return t;
}

// One of the member types a rewritten compound may use.
static hid_t member_type(unsigned k) {
    switch (k % 6) {
    case 0: return H5Tcopy(H5T_NATIVE_INT64);
    case 1: return H5Tcopy(H5T_NATIVE_DOUBLE);
    case 2: return H5Tcopy(H5T_NATIVE_FLOAT);
    case 3: return H5Tcopy(H5T_NATIVE_UINT8);
    case 4: return fixed_str(8, H5T_STR_NULLTERM);
    default: return vlen_str();
    }
}

// Fills one element of type t at buf from the input: numbers get raw input
// bytes (so NaN, infinities and extremes come up), variable-length strings a
// picked string, compounds member by member.
static void fill_value(Ed *e, hid_t t, uint8_t *buf) {
    H5T_class_t cls = H5Tget_class(t);
    if (cls == H5T_COMPOUND) {
        int nm = H5Tget_nmembers(t);
        for (int i = 0; i < nm; i++) {
            hid_t mt = H5Tget_member_type(t, (unsigned)i);
            fill_value(e, mt, buf + H5Tget_member_offset(t, (unsigned)i));
            H5Tclose(mt);
        }
    } else if (cls == H5T_STRING && H5Tis_variable_str(t) > 0) {
        const char *s = pick_string(e);
        memcpy(buf, &s, sizeof s);
    } else {
        in_bytes(e, buf, H5Tget_size(t));
    }
}

// A compound like base (or a small one when base is not a compound) with
// members dropped, renamed, retyped or added; packed. -1 when nothing is left.
static hid_t edited_compound(Ed *e, hid_t base) {
    enum { MAX_M = 40 };
    char *names[MAX_M];
    hid_t types[MAX_M];
    size_t nm = 0;
    if (base >= 0 && H5Tget_class(base) == H5T_COMPOUND) {
        int n = H5Tget_nmembers(base);
        for (int i = 0; i < n && nm < MAX_M; i++) {
            char *name = H5Tget_member_name(base, (unsigned)i);
            names[nm] = strdup(name ? name : "?");
            H5free_memory(name);
            types[nm++] = H5Tget_member_type(base, (unsigned)i);
        }
    } else {
        names[nm] = strdup("epoch"), types[nm++] = member_type(0);
        names[nm] = strdup("status"), types[nm++] = member_type(4);
    }
    unsigned edits = in_u8(e) % 3 + 1;
    for (unsigned k = 0; k < edits && nm > 0; k++) {
        size_t j = in_u8(e) % nm;
        unsigned action = in_u8(e) % 4;
        if (action == 0) {  // drop
            free(names[j]);
            H5Tclose(types[j]);
            memmove(names + j, names + j + 1, (nm - j - 1) * sizeof *names);
            memmove(types + j, types + j + 1, (nm - j - 1) * sizeof *types);
            nm--;
        } else if (action == 1) {  // rename
            size_t len = strlen(names[j]);
            char *r = malloc(len + 3);
            if (!r) abort();
            memcpy(r, names[j], len);
            memcpy(r + len, "_x", 3);
            free(names[j]);
            names[j] = r;
        } else if (action == 2) {  // retype
            H5Tclose(types[j]);
            types[j] = member_type(in_u8(e));
        } else if (nm < MAX_M) {  // add
            names[nm] = strdup(in_u8(e) & 1 ? "extra" : "trial_id");
            types[nm++] = member_type(in_u8(e));
        }
    }
    size_t size = 0;
    for (size_t i = 0; i < nm; i++) size += H5Tget_size(types[i]);
    hid_t t = size ? H5Tcreate(H5T_COMPOUND, size) : -1;
    size_t off = 0;
    for (size_t i = 0; i < nm; i++) {
        // A name given twice makes H5Tinsert fail: then the type is refused.
        if (t >= 0 && H5Tinsert(t, names[i], off, types[i]) < 0) {
            H5Tclose(t);
            t = -1;
        }
        off += H5Tget_size(types[i]);
        free(names[i]);
        H5Tclose(types[i]);
    }
    return t;
}

// ---- operations on objects ----

static int op_set_attr(Ed *e, hid_t f, EditFileKind kind) {
    char obj[256], name[128];
    pick_attr(e, kind, obj, sizeof obj, name, sizeof name);
    hid_t t = -1, sp = -1, a = -1;
    uint8_t value[64] = {0};
    void *buf = value;
    const char *strs[8];
    uint8_t *fixed = NULL;
    unsigned k = in_u8(e) % 10;
    switch (k) {
    case 0:
    case 1:
        t = vlen_str();
        strs[0] = k == 0 ? in_string(e) : pick_string(e);
        buf = strs;
        break;
    case 2: {
        size_t size = in_u8(e) % 64 + 1;
        t = fixed_str(size, (H5T_str_t)(in_u8(e) % 3));
        fixed = calloc(1, size);
        if (!fixed) abort();
        in_bytes(e, fixed, size);
        buf = fixed;
        break;
    }
    case 3: {
        static const int64_t special[7] = {0, -1, 1, INT64_MIN, INT64_MAX, (int64_t)1 << 31, ((int64_t)1 << 40) + 3};
        unsigned w = in_u8(e) % 8;
        int64_t v;
        if (w < 7) v = special[w];
        else in_bytes(e, &v, sizeof v);
        memcpy(value, &v, sizeof v);
        t = H5Tcopy(H5T_NATIVE_INT64);
        break;
    }
    case 4: {
        static const hid_t *const ints[5] = {&H5T_NATIVE_INT8_g, &H5T_NATIVE_UINT8_g, &H5T_NATIVE_UINT16_g,
                                             &H5T_NATIVE_INT32_g, &H5T_NATIVE_UINT64_g};
        t = H5Tcopy(*ints[in_u8(e) % 5]);
        in_bytes(e, value, 8);
        break;
    }
    case 5: {
        const double special[6] = {NAN, INFINITY, -INFINITY, 1e308, -0.0, 2.5};
        unsigned w = in_u8(e) % 7;
        double v;
        if (w < 6) v = special[w];
        else in_bytes(e, &v, sizeof v);
        memcpy(value, &v, sizeof v);
        t = H5Tcopy(H5T_NATIVE_DOUBLE);
        break;
    }
    case 6:
        t = H5Tcopy(H5T_NATIVE_FLOAT);
        in_bytes(e, value, 4);
        break;
    case 7: {  // an array where one value is expected
        hsize_t n = in_u8(e) % 6;
        sp = H5Screate_simple(1, &n, NULL);
        if (in_u8(e) & 1) {
            t = vlen_str();
            for (hsize_t i = 0; i < n; i++) strs[i] = pick_string(e);
            buf = strs;
        } else {
            t = H5Tcopy(H5T_NATIVE_INT64);
            in_bytes(e, value, sizeof value);
        }
        break;
    }
    case 8:  // no value at all
        sp = H5Screate(H5S_NULL);
        t = in_u8(e) & 1 ? vlen_str() : H5Tcopy(H5T_NATIVE_INT64);
        break;
    default:
        t = H5Tcreate(H5T_COMPOUND, 16);
        H5Tinsert(t, "epoch", 0, H5T_NATIVE_INT64);
        H5Tinsert(t, "value", 8, H5T_NATIVE_DOUBLE);
        in_bytes(e, value, 16);
        break;
    }
    if (sp < 0) sp = H5Screate(H5S_SCALAR);
    H5Adelete_by_name(f, obj, name, H5P_DEFAULT);
    a = H5Acreate_by_name(f, obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0;
    if (ok && H5Sget_simple_extent_npoints(sp) > 0) ok = H5Awrite(a, t, buf) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    free(fixed);
    return ok;
}

static int op_set_dataset(Ed *e, hid_t f, EditFileKind kind) {
    const char *obj = pick_object(e, kind);
    hid_t old = H5Lexists(f, obj, H5P_DEFAULT) > 0 ? H5Dopen2(f, obj, H5P_DEFAULT) : -1;
    hid_t old_type = old >= 0 ? H5Dget_type(old) : -1, old_space = old >= 0 ? H5Dget_space(old) : -1;
    hsize_t old_dims[8] = {0};
    int old_rank = old_space >= 0 ? H5Sget_simple_extent_ndims(old_space) : 0;
    if (old_rank > 0 && old_rank <= 8) H5Sget_simple_extent_dims(old_space, old_dims, NULL);
    unsigned tk = in_u8(e) % 9;
    hid_t t;
    switch (tk) {
    case 0: t = old_type >= 0 ? H5Tget_native_type(old_type, H5T_DIR_DEFAULT) : H5Tcopy(H5T_NATIVE_INT64); break;
    case 1: t = H5Tcopy(H5T_NATIVE_INT64); break;
    case 2: t = H5Tcopy(H5T_NATIVE_UINT8); break;
    case 3: t = H5Tcopy(H5T_NATIVE_FLOAT); break;
    case 4: t = H5Tcopy(H5T_NATIVE_DOUBLE); break;
    case 5: t = vlen_str(); break;
    case 6: {
        static const size_t sizes[3] = {8, 17, 64};
        t = fixed_str(sizes[in_u8(e) % 3], H5T_STR_NULLTERM);
        break;
    }
    case 7: t = edited_compound(e, old_type); break;
    default: t = H5Tcopy(H5T_NATIVE_INT32); break;
    }
    // Shape: small, near the old one (lengths that disagree by a little), or
    // huge and never written (chunked, so nothing is stored).
    int rank = (int)(in_u8(e) % 4), huge = 0;
    hsize_t dims[3] = {0, 0, 0}, max[3], chunk[3], npoints = 1;
    for (int i = 0; i < rank; i++) {
        unsigned v = in_u8(e);
        if (v < 200) {
            dims[i] = v % 13;
        } else if (v < 250) {
            long d = (i < old_rank ? (long)old_dims[i] : 0) + (long)v - 225;
            dims[i] = d > 0 ? (hsize_t)d : 0;
        } else {
            dims[i] = (hsize_t)1 << (16 + 4 * (v - 250));
            huge = 1;
        }
        max[i] = H5S_UNLIMITED;
        chunk[i] = dims[i] == 0 ? 1 : dims[i] < 64 ? dims[i] : 64;
        if (dims[i] == 0 || npoints <= EDIT_MAX_ELEMS) npoints *= dims[i];  // saturates past the cap
    }
    if (npoints > EDIT_MAX_ELEMS) huge = 1;
    unsigned fill = in_u8(e) % 3;  // 0 input bytes, 1 keep the old values, 2 zeros
    size_t esize = t >= 0 ? H5Tget_size(t) : 0;
    // The old values, when the type is kept (read before the old dataset goes).
    uint8_t *old_buf = NULL;
    hssize_t old_n = old_space >= 0 ? H5Sget_simple_extent_npoints(old_space) : 0;
    if (fill == 1 && tk == 0 && old >= 0 && old_n > 0 && old_n <= EDIT_MAX_ELEMS) {
        old_buf = calloc((size_t)old_n, esize);
        if (!old_buf) abort();
        if (H5Dread(old, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, old_buf) < 0) {
            free(old_buf);
            old_buf = NULL;
        }
    }
    if (old >= 0) H5Dclose(old);
    H5Ldelete(f, obj, H5P_DEFAULT);
    int ok = 0;
    if (t >= 0) {
        hid_t sp = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, huge ? max : NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (huge) H5Pset_chunk(dcpl, rank, chunk);
        hid_t d = H5Dcreate2(f, obj, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        ok = d >= 0;
        if (ok && !huge && npoints > 0) {
            uint8_t *buf = calloc((size_t)npoints, esize);
            if (!buf) abort();
            if (fill == 0)
                for (hsize_t i = 0; i < npoints; i++) fill_value(e, t, buf + i * esize);
            if (old_buf) memcpy(buf, old_buf, (size_t)(old_n < (hssize_t)npoints ? old_n : (hssize_t)npoints) * esize);
            ok = H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
            free(buf);
        }
        if (d >= 0) H5Dclose(d);
        H5Pclose(dcpl);
        H5Sclose(sp);
    }
    if (old_buf) H5Dvlen_reclaim(t, old_space, H5P_DEFAULT, old_buf);
    free(old_buf);
    if (t >= 0) H5Tclose(t);
    if (old_type >= 0) H5Tclose(old_type);
    if (old_space >= 0) H5Sclose(old_space);
    return ok;
}

static int op_link(Ed *e, hid_t f, EditFileKind kind) {
    const char *obj = pick_object(e, kind);
    unsigned how = in_u8(e);
    H5Ldelete(f, obj, H5P_DEFAULT);
    herr_t rc;
    if (how & 1) {
        // A soft link: to the root, to itself, to nothing, or to a sibling.
        char target[300];
        switch ((how >> 1) % 4) {
        case 0: snprintf(target, sizeof target, "/"); break;
        case 1: snprintf(target, sizeof target, "/%s", obj); break;
        case 2: snprintf(target, sizeof target, "/nonexistent"); break;
        default: snprintf(target, sizeof target, "/%s", pick_object(e, kind)); break;
        }
        note(e, "soft link to", target, "");
        rc = H5Lcreate_soft(target, f, obj, H5P_DEFAULT, H5P_DEFAULT);
    } else {
        // An external link: into another file of the directory (or this
        // one), a missing file, or something that is not HDF5.
        size_t nf = e->s->n_files, k = in_u8(e) % (nf + 2);
        const char *file = k < nf ? e->s->files[k] : k == nf ? "missing.h5" : "/dev/null";
        static const char *const paths[4] = {"/", "/trials", "/epochs", "/trial"};
        note(e, "external link to", file, paths[(how >> 1) % 4]);
        rc = H5Lcreate_external(file, paths[(how >> 1) % 4], f, obj, H5P_DEFAULT, H5P_DEFAULT);
    }
    return rc >= 0;
}

static int op_rename(Ed *e, hid_t f, EditFileKind kind) {
    if (in_u8(e) & 1) {
        char obj[256], name[128], to[140];
        pick_attr(e, kind, obj, sizeof obj, name, sizeof name);
        snprintf(to, sizeof to, "%s_old", name);
        return H5Arename_by_name(f, obj, name, to, H5P_DEFAULT) >= 0;
    }
    const char *obj = pick_object(e, kind);
    char to[300];
    if (in_u8(e) & 1) snprintf(to, sizeof to, "%s", pick_object(e, kind));  // onto another: mostly refused
    else snprintf(to, sizeof to, "%s_old", obj);
    return H5Lmove(f, obj, f, to, H5P_DEFAULT, H5P_DEFAULT) >= 0;
}

// ---- operations on files ----

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        buf = malloc((size_t)st.st_size + 1);
        if (!buf) abort();
        *len = fread(buf, 1, (size_t)st.st_size, f);
    }
    fclose(f);
    return buf;
}

static int write_all(const char *path, const void *data, size_t len, int append) {
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_CLOEXEC, 0644);
    if (fd < 0) return 0;
    int ok = len == 0 || write(fd, data, len) == (ssize_t)len;
    close(fd);
    return ok;
}

static int op_replace_file(Ed *e, const char *path, size_t file) {
    unsigned how = in_u8(e) % 6;
    size_t other = in_u8(e) % e->s->n_files;
    if (how == 3) {  // a copy of another file of the directory
        char src[4096];
        snprintf(src, sizeof src, "%s/%s", e->s->dir, e->s->files[other]);
        size_t len = 0;
        char *data = read_all(src, &len);
        int ok = data && other != file && write_all(path, data, len, 0);
        free(data);
        return ok;
    }
    unlink(path);
    rmdir(path);
    switch (how) {
    case 0: return 1;  // gone
    case 1: return write_all(path, "", 0, 0);
    case 2: return mkdir(path, 0755) == 0;
    case 4: return write_all(path, "not an HDF5 file\n", 17, 0);
    default: {  // a link to itself: ELOOP
        const char *base = strrchr(path, '/');
        return symlink(base ? base + 1 : path, path) == 0;
    }
    }
}

static int op_bytes(Ed *e, const char *path, int raw) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    size_t size = (size_t)st.st_size;
    if (!raw || size == 0) {
        uint8_t junk[256];
        size_t n = in_u8(e) % sizeof junk + 1;
        in_bytes(e, junk, n);
        return write_all(path, junk, n, 1);
    }
    // Raw damage: bytes at any offset XORed with input bytes.
    size_t pos = (size_t)(((uint64_t)in_u16(e) * size) >> 16), n = in_u8(e) % 16 + 1;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return 0;
    uint8_t b[16];
    ssize_t got = pread(fd, b, n, (off_t)pos);
    for (ssize_t i = 0; i < got; i++) b[i] ^= (uint8_t)(in_u8(e) | 1);
    int ok = got > 0 && pwrite(fd, b, (size_t)got, (off_t)pos) == got;
    close(fd);
    return ok;
}

// ---- the sequence ----

int edit_apply(const EditSpace *s, const uint8_t *data, size_t size) {
    Ed e = {.s = s, .p = data, .n = size};
    int changed = 0;
    for (int k = 0; k < EDIT_MAX_OPS && e.pos < e.n; k++) {
        EditOp op = (EditOp)(in_u8(&e) % EDIT_COUNT);
        size_t file = in_u8(&e) % s->n_files;
        EditFileKind kind = s->kinds[file];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", s->dir, s->files[file]);
        int ok = 0;
        if (op == EDIT_TRUNCATE) {
            struct stat st;
            ok = stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                 truncate(path, (off_t)(((uint64_t)st.st_size * in_u8(&e)) >> 8)) == 0;
        } else if (op == EDIT_APPEND || op == EDIT_RAW) {
            ok = op_bytes(&e, path, op == EDIT_RAW && s->raw);
        } else if (op == EDIT_REPLACE_FILE) {
            ok = op_replace_file(&e, path, file);
        } else {
            hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
            if (f < 0) {
                H5Eclear2(H5E_DEFAULT);
                continue;
            }
            char obj[256], name[128];
            switch (op) {
            case EDIT_DELETE_OBJECT: ok = H5Ldelete(f, pick_object(&e, kind), H5P_DEFAULT) >= 0; break;
            case EDIT_DELETE_ATTR:
                pick_attr(&e, kind, obj, sizeof obj, name, sizeof name);
                ok = H5Adelete_by_name(f, obj, name, H5P_DEFAULT) >= 0;
                break;
            case EDIT_SET_ATTR: ok = op_set_attr(&e, f, kind); break;
            case EDIT_SET_DATASET: ok = op_set_dataset(&e, f, kind); break;
            case EDIT_MAKE_GROUP: {
                const char *o = pick_object(&e, kind);
                H5Ldelete(f, o, H5P_DEFAULT);
                hid_t g = H5Gcreate2(f, o, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                ok = g >= 0;
                if (g >= 0) H5Gclose(g);
                break;
            }
            case EDIT_LINK: ok = op_link(&e, f, kind); break;
            case EDIT_RENAME: ok = op_rename(&e, f, kind); break;
            default: break;
            }
            if (H5Fclose(f) < 0) ok = 0;
            H5Eclear2(H5E_DEFAULT);
        }
        if (s->verbose) {
            static const char *const names[EDIT_COUNT] = {"delete object", "delete attribute", "set attribute",
                                                          "set dataset",   "make group",       "link",
                                                          "rename",        "truncate",         "append",
                                                          "replace file",  "raw"};
            fprintf(stderr, "edit %d: %s in %s: %s\n", k, names[op], s->files[file], ok ? "done" : "refused");
        }
        changed += ok;
    }
    for (size_t i = 0; i < e.n_owned; i++) free(e.owned[i]);
    return changed;
}
