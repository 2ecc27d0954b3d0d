/*
 * augment.h — training-set augmentation: random rotation, flip, zoom and
 * Gaussian noise applied to a cached (S, S, 3) uint8 image while it becomes
 * a normalised (3, S, S) float tensor.
 *
 * Why this shape. The reference workflow defined augmentations and never
 * applied them; here they are a pure function of (seed, image, view), so the
 * frozen backbone can turn each (image, view) into features once, and every
 * rank, batch order or resumed run sees the same augmented images. A view is
 * chosen per epoch as epoch mod K (augment_view_of_epoch).
 *
 * Two steps. augment_draw() gives the random parameters of one (seed,
 * image, view) from the counter RNG (purpose RNG_AUGMENT); augment_apply()
 * does the work from those parameters alone, allocates nothing, keeps no
 * state, and may run on any thread.
 *
 * Geometry convention. Pixel (x, y) (column, row; y grows downwards as
 * displayed) has its centre at coordinate (x, y); the image centre is
 * c = ((S-1)/2, (S-1)/2). The forward map, source to output, is: flip, then
 * rotate by the angle about c, then zoom by the factor about c. A positive
 * angle turns the image counter-clockwise as displayed (torchvision's
 * rotate): with 90 degrees source pixel (x, y) lands on (y, S-1-x). Zoom > 1
 * magnifies (the border is cropped away), zoom < 1 shrinks (the border is
 * filled). The three are composed into one inverse affine map, output pixel
 * centre -> source point, sampled once with bilinear interpolation in
 * float; a neighbour outside the image counts as the fill value 0 in [0, 1]
 * intensity (black), as grid_sample's zero padding does. Multiples of 90
 * degrees use exact sines and cosines, so they (and flips) move pixels
 * without interpolating.
 *
 * Noise. Gaussian with a fixed standard deviation noise_std (not drawn, as
 * MONAI's RandGaussianNoise with sample_std=False), independent per pixel
 * and per channel (as MONAI's), added to the intensity in [0, 1] after the
 * geometry and before the ImageNet normalisation, and not clipped (as
 * MONAI's; clipping would bias the mean of dark and bright pixels). Element
 * e = ch*S*S + y*S + x of the (3, S, S) tensor takes normal number e mod 6
 * of the Philox block with counter (image, view, AUGMENT_PART_NOISE, e / 6):
 * the block's 128 bits make six 21-bit uniforms, three Box-Muller pairs
 * (radius uniform (a + 1/2) / 2^21, so |z| <= 5.53). The noise of any element
 * can thus be computed alone (augment_noise_at), in any order or in
 * parallel.
 *
 * Identity. With nothing applied, or with rotation 0, zoom 1, no flip and
 * noise 0, augment_apply's output is bit-identical to resize_to_tensor's.
 */
#ifndef CTSWEEP_DATA_AUGMENT_H
#define CTSWEEP_DATA_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "data/resize.h"
#include "util/sha256.h"
#include "util/util.h"

// Flip axes: 0 mirrors columns (left-right, along the width), 1 mirrors
// rows (up-down, along the height). Beware when porting a MONAI pipeline:
// RandFlip(spatial_axis=0) on a (C, H, W) image flips the height, our 1.
enum { AUGMENT_FLIP_LR = 0, AUGMENT_FLIP_UD = 1 };

// Limits that validation enforces (a field outside them names itself).
#define AUGMENT_MAX_ROTATE_DEG 180.0
#define AUGMENT_MAX_ZOOM 10.0
#define AUGMENT_MAX_NOISE_STD 1.0
#define AUGMENT_MAX_VIEWS 1000000u

// Each operation is applied to a view with its own probability, drawn
// independently of the others.
typedef struct {
    double rotate_deg;   // angle uniform in [-rotate_deg, rotate_deg], [0, 180]
    double rotate_prob;  // [0, 1]
    int flip_axis;       // AUGMENT_FLIP_LR or AUGMENT_FLIP_UD
    double flip_prob;    // [0, 1]
    double zoom_min;     // factor uniform in [zoom_min, zoom_max], 0 < min <= max <= 10
    double zoom_max;
    double zoom_prob;    // [0, 1]
    double noise_std;    // in [0, 1] intensity units, [0, 1]
    double noise_prob;   // [0, 1]
    uint32_t aug_views;  // K >= 1 distinct views; epoch e uses view e mod K
} AugmentSpec;

// The parameters of one (seed, image, view); a pure function of them.
// Tests and tools may also fill one by hand (start from augment_draw_none).
typedef struct {
    int rotate, flip, zoom, noise;  // applied flags, 0 or 1
    double angle_deg;               // when rotate: positive = counter-clockwise as displayed
    int flip_axis;                  // when flip: AUGMENT_FLIP_LR or AUGMENT_FLIP_UD
    double zoom_factor;             // when zoom: > 1 zooms in
    float noise_std;                // when noise: standard deviation in [0, 1] intensity
    uint32_t noise_key[2];          // Philox key of the noise, from (seed, RNG_AUGMENT)
    uint32_t noise_ctr[3];          // (image, view, AUGMENT_PART_NOISE); the 4th word is e / 6
} AugmentDraw;

// The third counter word (the "part") of the augmentation streams, whose
// counters are (image, view, part, i): the parameters use one block
// (image, view, AUGMENT_PART_PARAMS, op) per operation, so changing one
// operation's settings never changes another's draws.
enum { AUGMENT_PART_PARAMS = 0, AUGMENT_PART_NOISE = 1 };
// Noise elements per Philox block.
#define AUGMENT_NOISE_PER_BLOCK 6

// Everything off (all probabilities 0, zoom range [1, 1], one view).
AugmentSpec augment_spec_default(void);
// 1 when no view can differ from the plain tensor (every operation has
// probability 0 or no effect).
int augment_spec_is_identity(const AugmentSpec *s);
// The settings' canonical text into h: rotate_deg, rotate_prob, flip_axis,
// flip_prob, zoom_min, zoom_max, zoom_prob, noise_std, noise_prob
// ("%.17g", the axis "%d", comma-separated), then ",aug_views" ("%u") when
// with_views. Trial ids (with views) and feature cache keys (without: they
// key each view) hash exactly these bytes, so this is the one place that
// lists the fields. A new field changes every trial id: append it only
// when it differs from its default, so that existing ids stay.
void augment_spec_hash(Sha256 *h, const AugmentSpec *s, int with_views);
// 0, or -1 with err naming the field: "augment.rotate_prob = 1.5 is
// outside [0, 1]". NaN and infinities are refused.
int augment_spec_validate(const AugmentSpec *s, CtError *err);

// Distinct views: 1 for an identity spec (all views are the plain tensor,
// so features need computing once), aug_views otherwise.
uint32_t augment_view_count(const AugmentSpec *s);
// The view an epoch trains on: epoch mod augment_view_count(s).
uint32_t augment_view_of_epoch(const AugmentSpec *s, uint32_t epoch);

// A draw with nothing applied (augment_apply then equals resize_to_tensor).
void augment_draw_none(AugmentDraw *out);
// The parameters for (seed, image, view). s must be valid.
void augment_draw(AugmentDraw *out, const AugmentSpec *s, uint64_t seed, uint32_t image, uint32_t view);

// dst (3, S, S) from src (S, S, 3), S >= 1: geometry, noise, normalisation
// as d says. s is not read for the parameters (d holds them) and may be NULL; it
// is taken so callers pass the pair together. No allocation, no state.
void augment_apply(float *dst, const uint8_t *src, size_t S, const AugmentSpec *s, const AugmentDraw *d,
                   NormMode norm);

// The standard normal that element e of the (3, S, S) tensor gets (before
// scaling by noise_std), computed alone; augment_apply adds noise_std times
// this value to the element's [0, 1] intensity.
float augment_noise_at(const AugmentDraw *d, size_t e);

#endif
