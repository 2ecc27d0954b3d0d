/*
 * config_table.c — the keys of a sweep configuration, one row each (path,
 * type, field, bounds, choices, help), the defaults (config_init, from the
 * layers' own *_default functions), and the checks that one row cannot make
 * alone: the data classes and split, a CLR schedule's fields together, and
 * the whole-document checks of config_finish.
 *
 * To add a key: add its field to SweepConfig (config.h), a row here, and its
 * default to config_init when it is not zero; the parser, the printed
 * configuration and `--help-config` follow from the row.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config_models.h"
#include "config/config_table.h"
#include "data/groups.h"
#include "nn/models.h"

// ---- defaults ----

void config_clr_default(ClrSpec *s) {
    memset(s, 0, sizeof *s);
    s->mode = CLR_TRIANGULAR;
    s->base_lr = 1e-4;
    s->max_lr = 1e-3;
    s->gamma = 1.0;
}

void config_init(SweepConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    data_spec_default(&cfg->data, "");
    cfg->phantoms_count = 200;
    cfg->phantoms_size = 128;
    cfg->phantoms_seed = 0;
    cfg->image_size = 224;
    cfg->normalize = NORM_IMAGENET;
    cfg->augment = augment_spec_default();
    cfg->on_bad_image = BAD_IMAGE_ERROR;
    image_limits_default(&cfg->limits);
    adam_spec_default(&cfg->adam);
    cfg->feature_store = FSTORE_FP32;
    backend_options_default(&cfg->backend);
    cfg->feature_batch = 16;
    cfg->seeds[0] = 0;
    cfg->n_seeds = 1;
    cfg->unfreeze[0] = 0;
    cfg->n_unfreeze = 1;
    cfg->backbone_lr_scale = 0.1;
    cfg->gpu_cache_mb = 4096;
    cfg->keep_weights = KEEP_SELECTED;
    cfg->ranks_per_trial = 1;
    cfg->worker_timeout = 1800.0;
    cfg->retries = 1;
}

// ---- enum adapters: the layers' own parsers, one signature ----

static int parse_norm(const char *s, void *out) { return norm_mode_parse(s, out); }
static int parse_policy(const char *s, void *out) { return bad_image_policy_parse(s, out); }
static int parse_duplicate(const char *s, void *out) { return duplicate_policy_parse(s, out); }
static int parse_optimizer(const char *s, void *out) { return optimizer_parse(s, out); }
static int parse_store(const char *s, void *out) { return feature_store_parse(s, out); }
static int parse_backend(const char *s, void *out) { return backend_kind_parse(s, out); }
static int parse_precision(const char *s, void *out) { return precision_parse(s, out); }
static int parse_conv_algo(const char *s, void *out) { return conv_algo_parse(s, out); }
static int parse_clr_mode(const char *s, void *out) { return clr_mode_parse(s, out); }
static int parse_keep(const char *s, void *out) { return keep_weights_parse(s, out); }
static int parse_flip(const char *s, void *out) {
    if (strcmp(s, "lr") == 0) *(int *)out = AUGMENT_FLIP_LR;
    else if (strcmp(s, "ud") == 0) *(int *)out = AUGMENT_FLIP_UD;
    else return -1;
    return 0;
}

static const char *const NORM_CHOICES[] = {"imagenet", "unit", NULL};
static const char *const POLICY_CHOICES[] = {"error", "skip", NULL};
static const char *const DUPLICATE_CHOICES[] = {"error", "warn", "ignore", NULL};
static const char *const OPTIMIZER_CHOICES[] = {"adam", "adamw", NULL};
static const char *const STORE_CHOICES[] = {"fp32", "fp16", "bf16", NULL};
static const char *const BACKEND_CHOICES[] = {"cpu", "cuda", NULL};
static const char *const PRECISION_CHOICES[] = {"fp32", "bf16", "tf32", "fp16", NULL};
static const char *const CONV_ALGO_CHOICES[] = {"auto", "direct", "winograd", NULL};
static const char *const CLR_CHOICES[] = {"triangular", "triangular2", "exp_range", "constant", "cosine", "step", NULL};
static const char *const FLIP_CHOICES[] = {"lr", "ud", NULL};
static const char *const KEEP_CHOICES[] = {"selected", "final", "both", "none", NULL};
static const char *const STRADDLE_CHOICES[] = {"error", "warn", NULL};
static int parse_straddle(const char *s, void *out) {
    if (strcmp(s, "error") == 0) *(DataStraddlePolicy *)out = DATA_STRADDLE_ERROR;
    else if (strcmp(s, "warn") == 0) *(DataStraddlePolicy *)out = DATA_STRADDLE_WARN;
    else return -1;
    return 0;
}

// ---- row checks ----

static int check_model(ConfigCtx *c, const ConfigKey *k, void *field, int line, const char *key) {
    (void)k;
    if (!model_is_known(field) || config_model_index(field) < 0 || config_model_index(field) >= CONFIG_MAX_MODELS)
        return config_fail(c, line, key, "unknown model %s (known: %s)", (const char *)field, model_names());
    return 0;
}

static int check_folder_name(ConfigCtx *c, const ConfigKey *k, void *field, int line, const char *key) {
    (void)k;
    if (!dataset_path_is_safe(field))
        return config_fail(c, line, key, "%s must be a relative folder inside data.root (no .., no leading /)",
                           (const char *)field);
    return 0;
}

static int check_group_pattern(ConfigCtx *c, const ConfigKey *k, void *field, int line, const char *key) {
    (void)k;
    CtError e = {{0}};
    if (groups_pattern_check(field, &e)) return config_fail(c, line, key, "%s", e.msg);
    return 0;
}

// ---- data.classes ----

static const ConfigKey LABEL_ROW = {.path = "data.classes.*", .type = CK_INT, .size = sizeof(int), .min = 0, .max = 1};

static int special_classes(ConfigCtx *c, const ConfigKey *k, struct fy_node *n, int line, const char *key) {
    (void)k;
    DataSpec *d = &c->cfg->data;
    if (config_node_is_null(n) || fy_node_get_type(n) != FYNT_MAPPING)
        return config_fail(c, line, key, "expected a mapping folder: label, e.g. {CT_NonCOVID: 0, CT_COVID: 1}, got %s",
                           config_node_kind(n));
    int has[2] = {0, 0};
    d->n_classes = 0;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
        struct fy_node *kn = fy_node_pair_key(p);
        int kline = config_node_line(kn, line);
        size_t len = 0;
        const char *s = kn && fy_node_get_type(kn) == FYNT_SCALAR ? fy_node_get_scalar(kn, &len) : NULL;
        DataClass *cl = &d->classes[d->n_classes];
        if (!s || len == 0 || len >= sizeof cl->folder || memchr(s, 0, len))
            return config_fail(c, kline, key, "a class is a folder name of 1 to %zu bytes", sizeof cl->folder - 1);
        if (d->n_classes == DATA_MAX_CLASSES)
            return config_fail(c, kline, key, "more than %d classes", DATA_MAX_CLASSES);
        memcpy(cl->folder, s, len);
        cl->folder[len] = 0;
        char ckey[400];
        snprintf(ckey, sizeof ckey, "%s.%.64s", key, cl->folder);
        if (check_folder_name(c, NULL, cl->folder, kline, ckey)) return -1;
        for (size_t i = 0; i < d->n_classes; i++)
            if (strcmp(d->classes[i].folder, cl->folder) == 0)
                return config_fail(c, kline, ckey, "duplicate key");
        struct fy_node *v = fy_node_pair_value(p);
        if (config_parse_scalar(c, &LABEL_ROW, CK_INT, v, config_node_line(v, kline), ckey, &cl->label)) return -1;
        has[cl->label] = 1;
        d->n_classes++;
    }
    if (d->n_classes < 2) return config_fail(c, line, key, "needs at least 2 classes, got %zu", d->n_classes);
    if (!has[0] || !has[1]) return config_fail(c, line, key, "labels must include 0 (negative) and 1 (positive)");
    return 0;
}

static void format_classes(ConfigBuf *b, const ConfigKey *k, const void *base) {
    (void)k;
    const DataSpec *d = &((const SweepConfig *)base)->data;
    cbuf_printf(b, "{");
    for (size_t i = 0; i < d->n_classes; i++) {
        cbuf_printf(b, "%s", i ? ", " : "");
        cbuf_yaml_str(b, d->classes[i].folder);
        cbuf_printf(b, ": %d", d->classes[i].label);
    }
    cbuf_printf(b, "}");
}

// ---- data.split ----

static int special_split(ConfigCtx *c, const ConfigKey *k, struct fy_node *n, int line, const char *key) {
    (void)k;
    DataSpec *d = &c->cfg->data;
    const char *want = "files, fractions, {files: FOLDER, kfold: K, seed: N} or {fractions: [train, val, test], seed: N, "
                       "kfold: K}";
    if (!config_node_is_null(n) && fy_node_get_type(n) == FYNT_SCALAR) {
        size_t len;
        const char *s = fy_node_get_scalar(n, &len);
        if (s && len == 5 && memcmp(s, "files", 5) == 0) d->split = DATA_SPLIT_FILES;
        else if (s && len == 9 && memcmp(s, "fractions", 9) == 0) d->split = DATA_SPLIT_FRACTIONS;
        else {
            // The scalar is not NUL-terminated: show it by its length.
            char shown[CONFIG_SHOW_MAX + 8];
            config_show_text(shown, sizeof shown, s ? s : "?", s ? len : 1);
            return config_fail(c, line, key, "expected %s, got %s", want, shown);
        }
        return 0;
    }
    if (config_node_is_null(n) || fy_node_get_type(n) != FYNT_MAPPING)
        return config_fail(c, line, key, "expected %s, got %s", want, config_node_kind(n));
    if (config_walk_mapping(c, n, "data.split", key, c->cfg, line)) return -1;
    int files = config_key_line(c, "data.split.files"), fractions = config_key_line(c, "data.split.fractions"),
        seed = config_key_line(c, "data.split.seed"), kfold = config_key_line(c, "data.split.kfold");
    if (files && fractions) return config_fail(c, fractions, key, "give files or fractions (with seed), not both");
    if (files && seed && !kfold)
        return config_fail(c, seed, key, "with split files, seed only seeds the folds: give kfold too, or no seed");
    d->split = files ? DATA_SPLIT_FILES : DATA_SPLIT_FRACTIONS;
    double sum = d->fractions[0] + d->fractions[1] + d->fractions[2];
    if (!files && fabs(sum - 1.0) > 1e-6)
        return config_fail(c, fractions ? fractions : line, "data.split.fractions",
                           "%g + %g + %g = %g: train, val and test must sum to 1", d->fractions[0], d->fractions[1],
                           d->fractions[2], sum);
    return 0;
}

static void format_split(ConfigBuf *b, const ConfigKey *k, const void *base) {
    (void)k;
    const DataSpec *d = &((const SweepConfig *)base)->data;
    if (d->split == DATA_SPLIT_FILES) {
        cbuf_printf(b, "{files: ");
        cbuf_yaml_str(b, d->split_dir);
        if (d->kfold) cbuf_printf(b, ", kfold: %zu, seed: %llu", d->kfold, (unsigned long long)d->seed);
        cbuf_printf(b, "}");
        return;
    }
    cbuf_printf(b, "{fractions: [");
    for (int i = 0; i < DATA_SPLITS; i++) {
        cbuf_printf(b, "%s", i ? ", " : "");
        cbuf_num(b, d->fractions[i]);
    }
    cbuf_printf(b, "], seed: %llu", (unsigned long long)d->seed);
    if (d->kfold) cbuf_printf(b, ", kfold: %zu", d->kfold);
    cbuf_printf(b, "}");
}

// ---- grid.clr ----

static int clr_equal(const void *pa, const void *pb) {
    const ClrSpec *a = pa, *b = pb;
    return a->mode == b->mode && a->base_lr == b->base_lr && a->max_lr == b->max_lr && a->step_size == b->step_size &&
           a->step_size_down == b->step_size_down && a->step_size_epochs == b->step_size_epochs &&
           a->gamma == b->gamma;
}

static void clr_init(void *elem) { config_clr_default(elem); }

// What one row cannot see: the fields of one schedule together. clr_resolve
// repeats these checks once iterations per epoch are known.
static int clr_finish(ConfigCtx *c, void *elem, int line, const char *key) {
    const ClrSpec *s = elem;
    const char *mode = clr_mode_name(s->mode);
    char k2[256];
    int l_base = config_key_line(c, "grid.clr[].base_lr"), l_max = config_key_line(c, "grid.clr[].max_lr");
    int l_ss = config_key_line(c, "grid.clr[].step_size"), l_sse = config_key_line(c, "grid.clr[].step_size_epochs");
    int l_down = config_key_line(c, "grid.clr[].step_size_down");
    if (s->mode != CLR_CONSTANT && s->max_lr < s->base_lr) {
        if (l_max) {
            snprintf(k2, sizeof k2, "%s.max_lr", key);
            return config_fail(c, l_max, k2, "%g is below base_lr %g", s->max_lr, s->base_lr);
        }
        snprintf(k2, sizeof k2, "%s.base_lr", key);
        return config_fail(c, l_base ? l_base : line, k2, "%g is above max_lr %g (the default; give max_lr)",
                           s->base_lr, s->max_lr);
    }
    int stepped = s->mode == CLR_TRIANGULAR || s->mode == CLR_TRIANGULAR2 || s->mode == CLR_EXP_RANGE ||
                  s->mode == CLR_STEP;
    if (stepped) {
        if (s->step_size > 0 && s->step_size_epochs > 0) {
            snprintf(k2, sizeof k2, "%s.step_size_epochs", key);
            return config_fail(c, l_sse, k2, "give step_size (iterations) or step_size_epochs, not both");
        }
        if (!(s->step_size > 0) && !(s->step_size_epochs > 0)) {
            snprintf(k2, sizeof k2, "%s.step_size", key);
            return config_fail(c, line, k2, "mode %s needs step_size (iterations) or step_size_epochs", mode);
        }
        if (s->step_size > 0 && s->step_size < 1) {
            snprintf(k2, sizeof k2, "%s.step_size", key);
            return config_fail(c, l_ss, k2, "%g is below 1 iteration", s->step_size);
        }
    }
    if (s->step_size_down > 0 && s->step_size_down < 1) {
        snprintf(k2, sizeof k2, "%s.step_size_down", key);
        return config_fail(c, l_down, k2, "%g is below 1 iteration", s->step_size_down);
    }
    if ((s->mode == CLR_EXP_RANGE || s->mode == CLR_STEP) && !config_key_line(c, "grid.clr[].gamma")) {
        snprintf(k2, sizeof k2, "%s.gamma", key);
        return config_fail(c, line, k2, "mode %s needs gamma in (0, 1], the factor per %s", mode,
                           s->mode == CLR_STEP ? "step" : "iteration (e.g. 0.999)");
    }
    return 0;
}

// ---- printing conditions ----

static int show_root(const SweepConfig *cfg) { return cfg->data_root_set; }
static int show_phantoms(const SweepConfig *cfg) { return !cfg->data_root_set; }
static int show_hidden(const SweepConfig *cfg) { return cfg->head_hidden_set; }
static int show_dropout(const SweepConfig *cfg) { return cfg->head_dropout_set; }
static int show_groups(const SweepConfig *cfg) { return cfg->data.groups != DATA_GROUPS_NONE; }

// ---- the table ----

#define AT(f) .off = offsetof(SweepConfig, f), .size = sizeof(((SweepConfig *)0)->f)
#define AT_CLR(f) .off = offsetof(ClrSpec, f), .size = sizeof(((ClrSpec *)0)->f)
#define RANGE(a, b) .min = (a), .max = (b)
#define ENUM(names, fn) .type = CK_ENUM, .choices = (names), .parse_enum = (fn)
// A list field f with count field n, capacity from f's declaration.
#define LIST(f, n, t)                                                                                  \
    .type = CK_LIST, .elem = (t), .off = offsetof(SweepConfig, f), .off2 = offsetof(SweepConfig, n),   \
    .size = sizeof(((SweepConfig *)0)->f), .elem_size = sizeof(((SweepConfig *)0)->f[0]),              \
    .max_n = sizeof(((SweepConfig *)0)->f) / sizeof(((SweepConfig *)0)->f[0])
#define WEIGHTS(model, i)                                                                              \
    {.path = "weights." model, .type = CK_PATH, AT(weights[i]), .flags = CKF_FILE | CKF_OMIT_EMPTY,    \
     .hidden_note = "not given: seeded random backbone (train.backbone_seed)",                         \
     .def_note = "none: a seeded random backbone, with a loud warning",                                \
     .help = model " ImageNet weights as safetensors with torchvision tensor names (scripts/fetch-weights " \
                   "writes weights/" model ".safetensors)."}

const ConfigKey config_keys[] = {
    // ---- data ----
    {.path = "data", .type = CK_SECTION, .help = "Where the images come from and how they are prepared."},
    {.path = "data.root", .type = CK_PATH, AT(data.root), .flags = CKF_DIR, .show = show_root,
     .hidden_note = "not given: phantoms are generated into OUTDIR/phantoms", .def_note = "none (phantoms)",
     .help = "Folder with one subfolder per class (data.classes). When absent, phantoms are generated."},
    {.path = "data.phantoms", .type = CK_SECTION, .show = show_phantoms,
     .hidden_note = "not used: data.root is given",
     .help = "Synthetic lung CT slices (half positive), generated into OUTDIR/phantoms when data.root is absent; "
             "give data.root or data.phantoms, not both."},
    {.path = "data.phantoms.count", .type = CK_SIZE, AT(phantoms_count), RANGE(10, 1000000),
     .help = "Images to generate."},
    {.path = "data.phantoms.size", .type = CK_SIZE, AT(phantoms_size), RANGE(16, 4096),
     .help = "Side of the generated images in pixels."},
    {.path = "data.phantoms.seed", .type = CK_U64, AT(phantoms_seed), .help = "Seed of the phantom generator."},
    {.path = "data.classes", .type = CK_SPECIAL, .special = special_classes, .format = format_classes,
     .type_note = "a mapping folder: label (0 or 1)",
     .help = "Class folders under data.root and their labels (1 = positive); at least 2, labels 0 and 1 both "
             "used."},
    {.path = "data.split", .type = CK_SPECIAL, .special = special_split, .format = format_split,
     .type_note = "files, fractions, {files: FOLDER, kfold: K, seed: N} or {fractions: [train, val, test], seed: N, "
                  "kfold: K}",
     .help = "files: the official split files FOLDER/<train|val|test><class folder>.txt under data.root. "
             "fractions: a seeded split stratified by class (by label and group when data.groups is given). "
             "With kfold the test split stays fixed and train+val are pooled into K folds."},
    {.path = "data.split.files", .type = CK_STR, AT(data.split_dir), .check = check_folder_name,
     .flags = CKF_NOPRINT, .help = "Folder of the split files, relative to data.root."},
    {.path = "data.split.fractions", .type = CK_LIST, .elem = CK_NUM, AT(data.fractions),
     .elem_size = sizeof(double), .min_n = 3, .max_n = 3, RANGE(0, 1),
     .flags = CKF_NOPRINT | CKF_NOCOUNT | CKF_MIN_OPEN | CKF_MAX_OPEN,
     .help = "Train, val and test fractions; they sum to 1."},
    {.path = "data.split.seed", .type = CK_U64, AT(data.seed), .flags = CKF_NOPRINT,
     .help = "Seed of the fraction split and of the folds."},
    {.path = "data.split.kfold", .type = CK_SIZE, AT(data.kfold), RANGE(2, DATA_MAX_FOLDS), .flags = CKF_NOPRINT,
     .def_note = "none (one split)",
     .help = "K-fold cross-validation: train and val are pooled and divided into K folds, stratified by label, "
             "never dividing a group, seeded by seed; the grid gains the axis fold = 0..K-1 (fold k validates on "
             "fold k and trains on the others; the test split is the same for every fold). Every fold shares the backbone "
             "features: each image is passed once per view whatever K is."},
    {.path = "data.groups", .type = CK_SECTION, .show = show_groups,
     .hidden_note = "not given: each image is its own group",
     .help = "Which images belong together (e.g. one patient's slices): no split or fold divides a group. Give "
             "pattern or file."},
    {.path = "data.groups.pattern", .type = CK_STR, AT(data.group_pattern), .flags = CKF_OMIT_EMPTY,
     .check = check_group_pattern, .def_note = "none",
     .help = "Extended POSIX regular expression matched against each image's path relative to data.root; its "
             "first capture group is the group id, e.g. '-(p[0-9]+)-' or '^(.*)%[0-9]+\\.png$'. An image it does not "
             "match is an error."},
    {.path = "data.groups.file", .type = CK_PATH, AT(data.group_file), .flags = CKF_FILE | CKF_OMIT_EMPTY,
     .def_note = "none",
     .help = "CSV file with the columns path,group (path relative to data.root; a header row path,group is "
             "optional); every image needs a row."},
    {.path = "data.groups.on_straddle", ENUM(STRADDLE_CHOICES, parse_straddle), AT(data.on_straddle),
     .help = "With split files: error stops the run when a group is in two splits, naming the group and both "
             "files; warn reports it and goes on."},
    {.path = "data.image_size", .type = CK_SIZE, AT(image_size), RANGE(32, 2048),
     .help = "Side in pixels of the square images the backbone sees (antialiased bilinear resize)."},
    {.path = "data.normalize", ENUM(NORM_CHOICES, parse_norm), AT(normalize),
     .help = "imagenet: (x/255 - mean) / std of ImageNet, as the pretrained weights expect; unit: x/255."},
    {.path = "data.augment", .type = CK_SECTION,
     .help = "Training-set augmentation; each operation is applied to a view with its own probability."},
    {.path = "data.augment.rotate_deg", .type = CK_NUM, AT(augment.rotate_deg), RANGE(0, AUGMENT_MAX_ROTATE_DEG),
     .help = "Rotation angle drawn uniformly from [-rotate_deg, rotate_deg] degrees."},
    {.path = "data.augment.rotate_prob", .type = CK_NUM, AT(augment.rotate_prob), RANGE(0, 1),
     .help = "Probability of rotating a view."},
    {.path = "data.augment.flip", ENUM(FLIP_CHOICES, parse_flip), AT(augment.flip_axis),
     .help = "Flip axis: lr mirrors left-right, ud up-down."},
    {.path = "data.augment.flip_prob", .type = CK_NUM, AT(augment.flip_prob), RANGE(0, 1),
     .help = "Probability of flipping a view."},
    {.path = "data.augment.zoom", .type = CK_PAIR, .off = offsetof(SweepConfig, augment.zoom_min),
     .off2 = offsetof(SweepConfig, augment.zoom_max), .size = sizeof(double), RANGE(0, AUGMENT_MAX_ZOOM),
     .flags = CKF_MIN_OPEN, .help = "Zoom factor drawn uniformly from [min, max]; above 1 magnifies."},
    {.path = "data.augment.zoom_prob", .type = CK_NUM, AT(augment.zoom_prob), RANGE(0, 1),
     .help = "Probability of zooming a view."},
    {.path = "data.augment.noise_std", .type = CK_NUM, AT(augment.noise_std), RANGE(0, AUGMENT_MAX_NOISE_STD),
     .help = "Standard deviation of Gaussian noise added to intensities in [0, 1]."},
    {.path = "data.augment.noise_prob", .type = CK_NUM, AT(augment.noise_prob), RANGE(0, 1),
     .help = "Probability of adding noise to a view."},
    {.path = "data.aug_views", .type = CK_U32, AT(augment.aug_views), RANGE(1, AUGMENT_MAX_VIEWS),
     .help = "Distinct augmented views of each training image; epoch e trains on view e mod aug_views. Each view "
             "costs one backbone pass over the training set."},
    {.path = "data.augment_seed", .type = CK_U64, AT(augment_seed), .help = "Seed of the augmentation draws."},
    {.path = "data.on_bad_image", ENUM(POLICY_CHOICES, parse_policy), AT(on_bad_image),
     .help = "error: an unreadable image stops the run before training; skip: it is left out and recorded."},
    {.path = "data.on_duplicate", ENUM(DUPLICATE_CHOICES, parse_duplicate), AT(on_duplicate),
     .help = "Identical files (same content) in two splits are leakage. error: the run is refused naming both; "
             "warn: it runs with a warning; ignore: not checked. Copies within one split are a warning (not under "
             "ignore)."},
    {.path = "data.max_width", .type = CK_U32, AT(limits.max_width), RANGE(1, 1 << 20),
     .help = "Images wider than this (from the header) are refused before decoding."},
    {.path = "data.max_height", .type = CK_U32, AT(limits.max_height), RANGE(1, 1 << 20),
     .help = "Images taller than this are refused before decoding."},
    {.path = "data.max_decoded_mb", .type = CK_MIB, AT(limits.max_decoded_bytes), RANGE(1, 1 << 20),
     .help = "Images whose decoded pixels would take more MiB than this are refused."},
    // ---- weights ----
    {.path = "weights", .type = CK_SECTION,
     .help = "Pretrained backbone weights per model; a model without a file gets a seeded random backbone."},
#define WEIGHTS_ROW(m) WEIGHTS(#m, MODEL_INDEX_##m),
    MODEL_NAMES(WEIGHTS_ROW)  // one row per registry model, in its order
    // ---- head ----
    {.path = "head", .type = CK_SECTION, .help = "The trainable classifier on the frozen features."},
    {.path = "head.hidden", LIST(head.hidden, head.n_hidden, CK_SIZE), .min_n = 0, RANGE(1, 65536),
     .show = show_hidden, .note_fn = config_head_hidden_note,
     .help = "Hidden layer sizes (Linear, ReLU, Dropout each); [] is a linear classifier."},
    {.path = "head.dropout", .type = CK_NUM, AT(head.dropout), RANGE(0, 1), .flags = CKF_MAX_OPEN,
     .show = show_dropout, .note_fn = config_head_dropout_note,
     .help = "Probability of zeroing a hidden activation in training."},
    {.path = "head.standardize", .type = CK_BOOL, AT(head.standardize),
     .help = "Z-score the features with training-set statistics (stored with the head); needed for random "
             "backbones, whose raw features are large."},
    // ---- train ----
    {.path = "train", .type = CK_SECTION, .help = "Optimiser, feature cache and compute backend."},
    {.path = "train.optimizer", ENUM(OPTIMIZER_CHOICES, parse_optimizer), AT(adam.kind),
     .help = "adam: weight decay added to the gradient (L2); adamw: decoupled weight decay."},
    {.path = "train.weight_decay", .type = CK_NUM, AT(adam.weight_decay), RANGE(0, 1), .help = "Weight decay."},
    {.path = "train.beta1", .type = CK_NUM, AT(adam.beta1), RANGE(0, 1), .flags = CKF_MAX_OPEN,
     .help = "Adam's first-moment decay."},
    {.path = "train.beta2", .type = CK_NUM, AT(adam.beta2), RANGE(0, 1), .flags = CKF_MAX_OPEN,
     .help = "Adam's second-moment decay."},
    {.path = "train.eps", .type = CK_NUM, AT(adam.eps), RANGE(0, 1), .flags = CKF_MIN_OPEN,
     .help = "Adam's epsilon."},
    {.path = "train.feature_cache_mb", .type = CK_SIZE, AT(feature_cache_mb), RANGE(0, 1 << 24),
     .help = "Memory per worker for cached backbone features, in MiB; 0 is a quarter of physical memory."},
    {.path = "train.feature_store", ENUM(STORE_CHOICES, parse_store), AT(feature_store),
     .help = "Precision of cached features; fp16 and bf16 fit twice as many."},
    {.path = "train.backend", ENUM(BACKEND_CHOICES, parse_backend), AT(backend.kind),
     .help = "cpu (oneDNN) or cuda (cuDNN)."},
    {.path = "train.precision", ENUM(PRECISION_CHOICES, parse_precision), AT(backend.precision),
     .help = "Arithmetic of the backbone."},
    {.path = "train.conv_algo", ENUM(CONV_ALGO_CHOICES, parse_conv_algo), AT(backend.conv_algo),
     .help = "Backbone convolutions: auto (Winograd for 3x3 layers where it is faster, ~1e-5 relative from "
             "direct), direct (the library's direct kernels, closest to PyTorch's), or winograd (every 3x3 "
             "stride-1 layer)."},
    {.path = "train.threads", .type = CK_INT, AT(backend.threads), RANGE(0, 4096),
     .help = "CPU threads per worker; 0 uses every core."},
    {.path = "train.feature_batch", .type = CK_SIZE, AT(feature_batch), RANGE(1, 4096),
     .help = "Images per backbone forward pass (on the CPU at least one per thread); features do not depend on it."},
    {.path = "train.gpu_share", .type = CK_BOOL, AT(gpu_share),
     .help = "Let workers on one node share a GPU (more workers than GPUs); otherwise that is refused."},
    {.path = "train.backbone_lr_scale", .type = CK_NUM, AT(backbone_lr_scale), RANGE(0, 1000),
     .help = "Learning rate of unfrozen backbone stages (grid.unfreeze > 0) as a multiple of the schedule's; "
             "weight decay applies to them as to the head."},
    {.path = "train.gpu_cache_mb", .type = CK_SIZE, AT(gpu_cache_mb), RANGE(0, 1 << 24),
     .help = "With unfrozen stages on the GPU: MiB of GPU memory for a trial's activations at the cut (val, "
             "test, then the training view in use); what does not fit is sent from host memory a batch at a "
             "time. Results do not depend on it."},
    {.path = "train.keep_weights", ENUM(KEEP_CHOICES, parse_keep), AT(keep_weights),
     .help = "The trained weights a done trial file keeps: those of its selected epoch, its final epoch, both or "
             "none (for ctsweep export). Each costs the trainable parameters in float32: ~52 MB for VGG16's "
             "default head at 224 px, ~0.6 MB for ResNet-34's, plus the unfrozen stages. Results do not depend "
             "on it."},
    {.path = "train.backbone_seed", .type = CK_U64, AT(backbone_seed),
     .help = "Seed of the random backbones of models without weights."},
    // ---- grid ----
    {.path = "grid", .type = CK_SECTION, .flags = CKF_REQUIRED,
     .help = "The hyperparameter grid: every combination of its lists is one trial."},
    {.path = "grid.model", LIST(models, n_models, CK_STR), .min_n = 1, .flags = CKF_REQUIRED | CKF_UNIQUE,
     .check = check_model, .help_fn = config_models_help},
    {.path = "grid.epochs", LIST(epochs, n_epochs, CK_SIZE), .min_n = 1, RANGE(1, 100000),
     .flags = CKF_REQUIRED | CKF_UNIQUE,
     .help = "Epoch budgets; trials differing only in epochs share one run, each recorded at its budget."},
    {.path = "grid.batch_size", LIST(batch_sizes, n_batch_sizes, CK_SIZE), .min_n = 1, RANGE(1, 4096),
     .flags = CKF_REQUIRED | CKF_UNIQUE, .help = "Training batch sizes."},
    {.path = "grid.clr", LIST(clr, n_clr, CK_SECTION), .min_n = 1, .flags = CKF_REQUIRED | CKF_UNIQUE,
     .elem_init = clr_init, .elem_equal = clr_equal, .elem_finish = clr_finish,
     .help = "Learning-rate schedules, stepped once per iteration, as PyTorch's CyclicLR."},
    {.path = "grid.clr[].mode", ENUM(CLR_CHOICES, parse_clr_mode), AT_CLR(mode),
     .help = "triangular, triangular2 (amplitude halves each cycle), exp_range (amplitude times "
             "gamma^iteration), constant (base_lr), cosine (max_lr to base_lr over the run), step (max_lr times "
             "gamma every step_size iterations)."},
    {.path = "grid.clr[].base_lr", .type = CK_NUM, AT_CLR(base_lr), RANGE(0, 10), .flags = CKF_MIN_OPEN,
     .help = "Lowest learning rate."},
    {.path = "grid.clr[].max_lr", .type = CK_NUM, AT_CLR(max_lr), RANGE(0, 1e12), .flags = CKF_MIN_OPEN,
     .help = "Highest learning rate; at least base_lr (an absurd one fails its trial, not the sweep)."},
    {.path = "grid.clr[].step_size", .type = CK_NUM, AT_CLR(step_size), RANGE(0, 1e9),
     .help = "Half cycle in iterations (step: iterations between decays); cyclic modes and step need it or "
             "step_size_epochs."},
    {.path = "grid.clr[].step_size_down", .type = CK_NUM, AT_CLR(step_size_down), RANGE(0, 1e9),
     .help = "Falling half cycle in iterations; 0 is the same as step_size."},
    {.path = "grid.clr[].step_size_epochs", .type = CK_NUM, AT_CLR(step_size_epochs), RANGE(0, 1e6),
     .help = "Half cycle in epochs (times the trial's iterations per epoch); Smith suggests 2 to 10."},
    {.path = "grid.clr[].gamma", .type = CK_NUM, AT_CLR(gamma), RANGE(0, 1), .flags = CKF_MIN_OPEN,
     .help = "exp_range: factor per iteration; step: factor per decay. Required for those modes."},
    {.path = "grid.seed", LIST(seeds, n_seeds, CK_U64), .min_n = 1, .flags = CKF_UNIQUE,
     .help = "Seeds of head initialisation, shuffling and dropout."},
    {.path = "grid.unfreeze", LIST(unfreeze, n_unfreeze, CK_SIZE), .min_n = 1, RANGE(0, NN_MAX_STAGES),
     .flags = CKF_UNIQUE,
     .help = "Trailing backbone stages that train with the head (VGG: block5, block4, ...; ResNet: layer4, "
             "layer3, ...); 0 trains the head alone on cached features. BatchNorm stays in inference mode."},
    // ---- parallelism ----
    {.path = "ranks_per_trial", .type = CK_SIZE, AT(ranks_per_trial), RANGE(1, 1024),
     .help = "Worker ranks that train one trial together (data-parallel)."},
    // ---- sweep ----
    {.path = "sweep", .type = CK_SECTION,
     .help = "How the job copes with lost workers; may change when a sweep is resumed."},
    {.path = "sweep.worker_timeout", .type = CK_NUM, AT(worker_timeout), RANGE(1, 1e7),
     .help = "Seconds a busy worker may go without a message (an epoch, a backbone pass's heartbeat) before "
             "the job ends with exit 75, everything it holds written, to be resumed."},
    {.path = "sweep.retries", .type = CK_SIZE, AT(retries), RANGE(0, 100),
     .help = "Times a failed run is tried again, on another worker, before its trials are recorded failed."},
};

const size_t config_n_keys = sizeof config_keys / sizeof config_keys[0];

// ---- whole-document checks ----

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int config_finish(ConfigCtx *c) {
    SweepConfig *cfg = c->cfg;
    DataSpec *d = &cfg->data;
    CtError e = {{0}};
    int l_root = config_key_line(c, "data.root"), l_ph = config_key_line(c, "data.phantoms");
    int l_classes = config_key_line(c, "data.classes"), l_split = config_key_line(c, "data.split");
    cfg->data_root_set = l_root != 0;
    cfg->head_hidden_set = config_key_line(c, "head.hidden") != 0;
    cfg->head_dropout_set = config_key_line(c, "head.dropout") != 0;
    if (l_root && l_ph) return config_fail(c, l_ph, "data.phantoms", "give data.root or data.phantoms, not both");
    int l_groups = config_key_line(c, "data.groups"), l_pattern = config_key_line(c, "data.groups.pattern"),
        l_gfile = config_key_line(c, "data.groups.file");
    if (l_pattern && l_gfile) return config_fail(c, l_gfile, "data.groups.file", "give pattern or file, not both");
    if (l_groups && !l_pattern && !l_gfile)
        return config_fail(c, l_groups, "data.groups", "needs pattern (a regular expression) or file (a CSV)");
    d->groups = l_pattern ? DATA_GROUPS_PATTERN : l_gfile ? DATA_GROUPS_FILE : DATA_GROUPS_NONE;
    if (!l_root) {
        DataSpec def;
        data_spec_default(&def, "");
        int same = d->n_classes == def.n_classes;
        for (size_t i = 0; same && i < d->n_classes; i++)
            same = strcmp(d->classes[i].folder, def.classes[i].folder) == 0 &&
                   d->classes[i].label == def.classes[i].label;
        if (!same)
            return config_fail(c, l_classes, "data.classes",
                               "phantoms are CT_NonCOVID: 0 and CT_COVID: 1; other classes need data.root");
        if (d->split == DATA_SPLIT_FILES)
            return config_fail(c, l_split, "data.split", "split files need data.root (phantoms come without them)");
    } else {
        char path[sizeof d->root + sizeof d->split_dir + 2];
        for (size_t i = 0; i < d->n_classes; i++) {
            snprintf(path, sizeof path, "%s/%s", d->root, d->classes[i].folder);
            if (!is_dir(path))
                return config_fail(c, l_classes ? l_classes : l_root, l_classes ? "data.classes" : "data.root",
                                   "no class folder %s", path);
        }
        if (d->split == DATA_SPLIT_FILES) {
            snprintf(path, sizeof path, "%s/%s", d->root, d->split_dir);
            if (!is_dir(path)) return config_fail(c, l_split, "data.split", "no split folder %s", path);
        }
    }
    // The layers' own validation, after the rows' bounds: a safety net.
    if (augment_spec_validate(&cfg->augment, &e))
        return config_fail(c, config_key_line(c, "data.augment"), "data.augment", "%s", e.msg);
    HeadSpec h = cfg->head;
    h.in_dim = 1;
    if (head_spec_check(&h, &e)) return config_fail(c, config_key_line(c, "head"), "head", "%s", e.msg);
    return config_check_unfreeze(c);
}
_Static_assert(MODEL_INDEX_COUNT <= CONFIG_MAX_MODELS, "more registry models than SweepConfig.weights slots");
