/*
 * results_edit.h — structure-aware damage to a results directory for
 * fuzz_results: a fuzz input is read as a sequence of edit operations, each
 * applied through the HDF5 API (or to the file's bytes) to one file of the
 * directory, so the readers see well-formed HDF5 that breaks ctsweep's
 * schema rather than mostly files HDF5 itself refuses.
 *
 * Input format (make_seeds_results.c writes seeds in it): up to EDIT_MAX_OPS
 * operations, each `op file args...`; op is taken modulo EDIT_COUNT, file
 * modulo the number of files; a missing byte reads as 0.
 */
#ifndef CTSWEEP_TESTS_FUZZ_RESULTS_EDIT_H
#define CTSWEEP_TESTS_FUZZ_RESULTS_EDIT_H

#include <stddef.h>
#include <stdint.h>

#define EDIT_MAX_OPS 16

typedef enum {
    EDIT_DELETE_OBJECT = 0,  // obj: unlink a group, dataset or link
    EDIT_DELETE_ATTR,        // attr
    EDIT_SET_ATTR,           // attr kind value...: replace an attribute by another type, shape or value
    EDIT_SET_DATASET,        // obj type rank dims... fill [compound edits]: rewrite a dataset
    EDIT_MAKE_GROUP,         // obj: an (empty) group in place of the object
    EDIT_LINK,               // obj kind target: a soft or external link in place of the object
    EDIT_RENAME,             // which name: move an object or rename an attribute
    EDIT_TRUNCATE,           // fraction: cut the file
    EDIT_APPEND,             // n bytes...: garbage after the end of the file
    EDIT_REPLACE_FILE,       // kind other: remove the file, or put something else there
    EDIT_RAW,                // pos n bytes...: overwrite bytes inside the file (only with raw on)
    EDIT_COUNT
} EditOp;

typedef enum { EDIT_FILE_SWEEP = 0, EDIT_FILE_TRIAL, EDIT_FILE_CHECKPOINT } EditFileKind;

// The files of one results directory and the names in them that edits aim
// at. Attribute names are "object@attr" ("/@state", "checkpoint@epoch").
typedef struct {
    const char *dir;
    const char *const *files;  // relative to dir
    const EditFileKind *kinds;
    size_t n_files;
    const char *const *objects[3];  // per kind
    size_t n_objects[3];
    const char *const *attrs[3];
    size_t n_attrs[3];
    const char *const *strings;  // values worth trying in string attributes (ids, file names)
    size_t n_strings;
    int raw;      // EDIT_RAW overwrites bytes; without it, it appends them
    int verbose;  // print each operation and whether it changed something
} EditSpace;

// Applies the operations in data to the files under s->dir. Returns the
// number of operations that changed something.
int edit_apply(const EditSpace *s, const uint8_t *data, size_t size);

#endif
