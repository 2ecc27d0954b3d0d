/*
 * folds.h — stratified, grouped assignment of images to bins: the seeded
 * train/val/test split by fractions when groups are given (groups.c), and
 * the folds of k-fold cross-validation. A group (e.g. one patient's slices)
 * always lands in one bin, and each bin gets its share of every label.
 *
 * Why greedy. Exact balancing of groups is a partition problem; the greedy
 * rule (largest group first, each to the bin whose share of the group's
 * labels is least filled) keeps every label within one image of its share
 * per bin when groups are single images, and within a group's size
 * otherwise. The order of equal-sized groups is a seeded shuffle, so the
 * seed alone decides the folds (never the file system's order).
 */
#ifndef CTSWEEP_DATA_FOLDS_H
#define CTSWEEP_DATA_FOLDS_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"

// Which stream of the RNG a balancing draws from (purpose RNG_FOLD).
enum { FOLDS_STREAM_SPLIT = 1, FOLDS_STREAM_FOLDS = 2 };

// The groups of the items with member[i] != 0 (member NULL: every item):
// unit_of[i] is item i's group number (SIZE_MAX for non-members), counts[u]
// its images per label (label != 0). Groups are numbered in order of their
// ids. Returns the number of groups; *counts is allocated.
size_t folds_units(const DataSet *ds, const uint8_t *member, size_t *unit_of, size_t (**counts)[2]);

// Puts each of n units (counts per label) into one of n_bins bins whose
// target share of each label is share[b] (shares sum to 1; a bin of share
// 0 gets nothing): bin[u]. Seeded by (seed, stream).
void folds_balance(const size_t (*counts)[2], size_t n, const double *share, size_t n_bins, uint64_t seed,
                   uint32_t stream, int *bin);

// With spec->kfold: pools the train and val images and sets each one's
// fold (0 .. kfold-1), grouped and stratified, seeded by spec->seed; test
// images keep fold -1. Errors when a fold would be empty.
int folds_assign(DataSet *ds, const DataSpec *spec, CtError *err);

// The split an item plays in fold `fold` (-1: no k-fold, its own split):
// test stays test; a pooled image is val in its fold and train elsewhere.
int folds_split_of(const DataItem *it, int fold);
// Images of `split` in fold `fold`.
size_t folds_count(const DataSet *ds, int fold, int split);

#endif
