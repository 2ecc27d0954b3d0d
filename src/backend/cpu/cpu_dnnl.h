/*
 * cpu_dnnl.h — the CPU backend's one check for oneDNN calls made while a
 * plan is built: a failing call records the user-facing error (what was
 * being built, then oneDNN's status) and jumps to the caller's `fail:`
 * label, where it frees what it made.
 */
#ifndef CTSWEEP_BACKEND_CPU_DNNL_H
#define CTSWEEP_BACKEND_CPU_DNNL_H

#include <dnnl.h>
#include <dnnl_debug.h>

#include "util/util.h"

// Needs `CtError *err` in scope and a `fail:` label.
#define DNNL_TRY(call, ...)                                                                   \
    do {                                                                                      \
        dnnl_status_t st_ = (call);                                                           \
        if (st_ != dnnl_success) {                                                            \
            ct_errorf(err, __VA_ARGS__);                                                      \
            ct_error_prefix(err, "oneDNN %s", dnnl_status2str(st_));                          \
            goto fail;                                                                        \
        }                                                                                     \
    } while (0)

#endif
