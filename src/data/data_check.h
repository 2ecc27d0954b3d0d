/*
 * data_check.h — is this data set one a classifier can be judged on? Made
 * once before any training, on the master:
 *
 * - every class has at least one image in train, val and test (with k-fold:
 *   in every fold's train and val, and in test); otherwise accuracy and AUC
 *   are computed over one class and every number the sweep writes is
 *   meaningless, with nothing to say so;
 * - no file's content appears in two splits (or folds): that is leakage, an
 *   error unless data.on_duplicate says otherwise; copies within one split
 *   are a warning with their count;
 * - a table of images per class and split, and a warning where val or test
 *   holds fewer than DATA_CHECK_FEW images of a class (intervals will be wide).
 *
 * The checks work on plain per-image arrays (class, split, optional fold,
 * content hash), so a k-fold split can be checked fold by fold without a
 * DataSet; data_check_dataset adapts a DataSet to them.
 */
#ifndef CTSWEEP_DATA_DATA_CHECK_H
#define CTSWEEP_DATA_DATA_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "data/dataset.h"
#include "util/util.h"

// Fewer images than this of a class in val or test (or a fold's val): warned.
#define DATA_CHECK_FEW 10

typedef enum { DUPLICATE_ERROR = 0, DUPLICATE_WARN = 1, DUPLICATE_IGNORE = 2 } DuplicatePolicy;

// "error", "warn" or "ignore"; -1 for anything else.
int duplicate_policy_parse(const char *s, DuplicatePolicy *out);

typedef struct {
    size_t n;         // images
    const int *cls;   // (n) class of each image, 0 .. n_classes-1
    const int *split; // (n) SplitId
    // k-fold (NULL without): (n) the image's fold, 0 .. n_folds-1, or -1 for
    // an image in no fold (the test set). Fold f's val is the images of fold
    // f, its train the images of every other fold; test is split SPLIT_TEST.
    const int *fold;
    size_t n_folds;
    const uint8_t (*content)[32];  // (n) SHA-256 of each file; NULL: no duplicate check
    const char *const *name;       // (n) each image's name in messages
    size_t n_classes;              // 1 .. DATA_MAX_CLASSES
    const char *const *class_name; // (n_classes)
} DataCheckInput;

// What the checks found (the warnings were printed with ct_warn).
typedef struct {
    size_t cross_sets;     // sets of identical files spanning two splits (folds) or more
    size_t within[DATA_SPLITS];  // images identical to an earlier one of the same split
    size_t few_cells;      // (class, val/test) cells under DATA_CHECK_FEW images
} DataCheckReport;

// Images of each class in each split of view `fold`: -1 is the plain split
// (train/val/test from in->split); f >= 0 is fold f's train and val, with the
// test set. count is (n_classes, DATA_SPLITS).
void data_check_count(const DataCheckInput *in, long fold, size_t (*count)[DATA_SPLITS]);

// Every class in every split (and fold). Returns 0, or -1 with one line
// naming the class, the split (and fold) and the counts.
int data_check_classes(const DataCheckInput *in, DataCheckReport *rep, CtError *err);
// Identical content across splits (folds): an error naming both files and
// their splits under DUPLICATE_ERROR, a warning under DUPLICATE_WARN. Within
// a split: a warning with the count (none under DUPLICATE_IGNORE).
int data_check_duplicates(const DataCheckInput *in, DuplicatePolicy policy, DataCheckReport *rep, CtError *err);
// Both, classes first; rep may be NULL.
int data_check_run(const DataCheckInput *in, DuplicatePolicy policy, DataCheckReport *rep, CtError *err);
// The table of images per class and split (per fold with k-fold).
void data_check_print_table(FILE *f, const DataCheckInput *in);

// ---- a DataSet ----
// Classes are the labels (0 negative, 1 positive), named by their class
// folders ("CT_COVID", or "A+B" when two folders share a label); a class
// folder that holds no image at all is refused too. Needs dataset_fingerprint
// first (the content hashes).
int data_check_dataset(const DataSet *ds, const DataSpec *spec, DuplicatePolicy policy, DataCheckReport *rep,
                       CtError *err);
void data_check_print_dataset(FILE *f, const DataSet *ds, const DataSpec *spec);

#endif
