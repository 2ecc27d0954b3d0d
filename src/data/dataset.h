/*
 * dataset.h — the data set index: which image files, their labels and their
 * split, from class folders and either the official split files or a seeded
 * stratified split by fractions, plus a fingerprint that identifies the
 * exact data (paths, labels, splits, sizes and contents) in the results.
 */
#ifndef CTSWEEP_DATA_DATASET_H
#define CTSWEEP_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define DATA_MAX_CLASSES 16
#define DATA_SPLITS 3

typedef enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1, SPLIT_TEST = 2 } SplitId;
typedef enum { DATA_SPLIT_FRACTIONS = 0, DATA_SPLIT_FILES = 1 } DataSplitKind;
// Where an image's group (e.g. the patient) comes from (groups.h).
typedef enum { DATA_GROUPS_NONE = 0, DATA_GROUPS_PATTERN = 1, DATA_GROUPS_FILE = 2 } DataGroupSource;
// A group found in two split files: an error, or a warning.
typedef enum { DATA_STRADDLE_ERROR = 0, DATA_STRADDLE_WARN = 1 } DataStraddlePolicy;
#define DATA_MAX_FOLDS 100

typedef struct {
    char folder[256];  // relative to the root, e.g. "CT_COVID"
    int label;         // 1 = positive
} DataClass;

typedef struct {
    char root[4096];
    DataClass classes[DATA_MAX_CLASSES];
    size_t n_classes;
    DataSplitKind split;
    // DATA_SPLIT_FILES: <root>/<split_dir>/<train|val|test><folder>.txt, one
    // name per line relative to the class folder (CRLF or LF, blank lines and
    // a missing final newline are fine), e.g. splits/trainCT_COVID.txt.
    char split_dir[256];
    // DATA_SPLIT_FRACTIONS: train, val, test (sum 1), stratified per class.
    double fractions[DATA_SPLITS];
    uint64_t seed;  // the fraction split and the folds
    // Groups: none (each image its own group), the first capture group of
    // group_pattern matched against the image's path relative to the root,
    // or group_file (CSV path,group).
    DataGroupSource groups;
    char group_pattern[512];
    char group_file[4096];
    DataStraddlePolicy on_straddle;
    // k-fold cross-validation (0: none): the test split stays fixed, train
    // and val are pooled and divided into kfold grouped, stratified folds.
    size_t kfold;
} DataSpec;

// Defaults: classes CT_NonCOVID -> 0 and CT_COVID -> 1, fractions
// 0.8 / 0.1 / 0.1, seed 0, split_dir "splits".
void data_spec_default(DataSpec *spec, const char *root);
const char *split_name(int split);

typedef struct {
    char *path;  // root/rel
    char *rel;   // relative to the root, e.g. "CT_COVID/x.png"
    int label;
    int split;       // train, val or test; with k-fold, train and val are pooled (fold says which val it is in)
    uint64_t bytes;
    uint8_t content[32];  // SHA-256 of the file, set by dataset_fingerprint
    size_t cls;      // index into the spec's classes
    char *group;     // the group id (groups.h); the relative path when no groups are given
    int fold;        // the fold whose val set holds it; -1 for test images and without k-fold
} DataItem;

typedef struct {
    char *root;
    DataItem *items;  // ordered by class (spec order), then name
    size_t n;
    size_t count[DATA_SPLITS][2];  // [split][label != 0]
    char fingerprint[65];          // hex SHA-256, set by dataset_fingerprint
    int hashed;                    // items[].content set (dataset_fingerprint ran)
    char **skipped;                // "rel: reason" for images left out
    size_t n_skipped;
    size_t kfold;                  // folds (0: none)
} DataSet;

// Scans the class folders (regular files, hidden ones excepted) and assigns
// splits. Errors name the folder, split file and line, or entry at fault.
int dataset_open(DataSet *ds, const DataSpec *spec, CtError *err);
void dataset_free(DataSet *ds);
// Removes items[i] (keeps order) and records "rel: reason" as skipped.
void dataset_skip(DataSet *ds, size_t i, const char *reason);
// SHA-256 over every item's path, label, split, size and content hash; the
// content hashes stay in items[].content (the duplicate check reads them).
int dataset_fingerprint(DataSet *ds, CtError *err);
// True when rel is a safe relative path: not empty, not absolute, no ".."
// component, no NUL or control characters.
int dataset_path_is_safe(const char *rel);

#endif
