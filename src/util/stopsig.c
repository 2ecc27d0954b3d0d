/*
 * stopsig.c — the thread that takes the stop signals (see stopsig.h).
 */
#include "util/stopsig.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

static atomic_int g_stop, g_fatal, g_installed;
static sigset_t g_set;

static void *signal_thread(void *arg) {
    (void)arg;
    int sigints = 0;
    for (;;) {
        int sig;
        if (sigwait(&g_set, &sig) != 0) continue;
        if (atomic_load(&g_fatal)) {
            // The default action, delivered to this thread only: the one
            // that runs no kernel.
            signal(sig, SIG_DFL);
            sigset_t one;
            sigemptyset(&one);
            sigaddset(&one, sig);
            pthread_sigmask(SIG_UNBLOCK, &one, NULL);
            raise(sig);
            _exit(128 + sig);
        }
        if (sig == SIGINT && sigints++) _exit(130);
        atomic_store(&g_stop, 1);
    }
    return NULL;
}

int stopsig_install(void) {
    if (atomic_exchange(&g_installed, 1)) return 0;
    sigemptyset(&g_set);
    sigaddset(&g_set, SIGTERM);
    sigaddset(&g_set, SIGUSR1);
    sigaddset(&g_set, SIGINT);
    sigset_t old;
    if (pthread_sigmask(SIG_BLOCK, &g_set, &old) != 0) return -1;
    pthread_attr_t attr;
    pthread_t t;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &attr, signal_thread, NULL);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return -1;
    }
    return 0;
}

int stopsig_requested(void) { return atomic_load_explicit(&g_stop, memory_order_relaxed); }

void stopsig_make_fatal(void) { atomic_store(&g_fatal, 1); }
