/*
 * id_format.c — the manifest's record of the trial id format and of the
 * weights' content, written and read back here side by side (see
 * id_format.h).
 */
#include "results/id_format.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/h5io.h"

// ---- weights_sha256: "MODEL SHA256\n" per grid model with a weights file ----

static char *weights_text(const Grid *g) {
    size_t cap = g->n_models * (sizeof g->weights_model[0] + WEIGHTS_DIGEST_HEX + 2) + 1, used = 0;
    char *text = ct_malloc(cap);
    text[0] = '\0';
    for (size_t m = 0; m < g->n_models; m++)
        if (g->weights_sha256[m][0])
            used += (size_t)snprintf(text + used, cap - used, "%s %s\n", g->weights_model[m], g->weights_sha256[m]);
    return text;
}

// The digest text stores for model into hex, or "" when it names none.
static void weights_lookup(const char *text, const char *model, char hex[WEIGHTS_DIGEST_HEX + 1]) {
    hex[0] = '\0';
    size_t len = strlen(model);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, model, len) == 0 && line[len] == ' ') {
            snprintf(hex, WEIGHTS_DIGEST_HEX + 1, "%.*s", WEIGHTS_DIGEST_HEX, line + len + 1);
            return;
        }
}

int id_format_write(hid_t f, const Grid *g, CtError *err) {
    if (h5io_attr_i64(f, "trial_id_format", GRID_ID_FORMAT, err)) return -1;
    char *text = weights_text(g);
    int rc = text[0] ? h5io_attr_str(f, "weights_sha256", text, err) : 0;
    free(text);
    return rc;
}

// ---- the checks ----

int id_format_weights_same(const char *path, const Grid *g) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    int64_t format = GRID_ID_FORMAT_PATHS;
    if (H5Aexists(f, "trial_id_format") > 0) h5io_read_attr_num(f, "trial_id_format", H5T_NATIVE_INT64, &format);
    char *stored = h5io_read_attr_str(f, "weights_sha256"), *now = weights_text(g);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    int same = format == GRID_ID_FORMAT && strcmp(stored ? stored : "", now) == 0;
    free(stored);
    free(now);
    return same;
}

int id_format_check(const char *path, const Grid *g, const SweepConfig *cfg, const char *what, CtError *err) {
    int64_t format = GRID_ID_FORMAT_PATHS;  // folders from before the attribute
    char *stored = NULL;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        H5Eclear2(H5E_DEFAULT);
        return ct_errorf(err, "%s: cannot open", path);
    }
    if (H5Aexists(f, "trial_id_format") > 0 && h5io_read_attr_num(f, "trial_id_format", H5T_NATIVE_INT64, &format)) {
        H5Fclose(f);
        return ct_errorf(err, "%s: trial_id_format is not one integer", path);
    }
    stored = h5io_read_attr_str(f, "weights_sha256");
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    int rc = 0;
    if (format > GRID_ID_FORMAT || format < GRID_ID_FORMAT_PATHS) {
        rc = ct_errorf(err, "%s: trial ids were made with id format %lld, which this build (format %d) does not make: "
                       "%s it with the ctsweep that made it",
                       path, (long long)format, GRID_ID_FORMAT, what);
    } else if (format == GRID_ID_FORMAT_PATHS && g->weights_named) {
        rc = ct_errorf(err, "%s: trial ids were made with id format 1 (weights hashed by path); this build makes "
                       "format %d (weights hashed by content): %s cannot reuse them; run into a new folder",
                       path, GRID_ID_FORMAT, what);
    } else if (g->weights_named) {
        for (size_t m = 0; m < g->n_models && !rc; m++) {
            char was[WEIGHTS_DIGEST_HEX + 1];
            weights_lookup(stored ? stored : "", g->weights_model[m], was);
            // A model without weights then or now differs in the configuration,
            // which is compared first.
            if (!was[0] || !g->weights_sha256[m][0] || strcmp(was, g->weights_sha256[m]) == 0) continue;
            rc = ct_errorf(err, "%s: weights.%s (%s) changed since the sweep ran (SHA-256 %.16s, was %.16s): %s "
                           "cannot reuse its trials; run into a new folder",
                           path, g->weights_model[m], config_weights(cfg, g->weights_model[m]), g->weights_sha256[m],
                           was, what);
        }
    }
    free(stored);
    return rc;
}
