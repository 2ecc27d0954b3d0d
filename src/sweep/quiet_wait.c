/*
 * quiet_wait.c — waiting without spinning (see quiet_wait.h).
 */
#define _GNU_SOURCE
#include "sweep/quiet_wait.h"

#include <math.h>
#include <time.h>

void sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000.0) * 1e6)};
    nanosleep(&ts, NULL);
}

void wait_quietly(MPI_Request *req) {
    double backoff = 0.02;
    for (;;) {
        int flag = 0;
        MPI_Test(req, &flag, MPI_STATUS_IGNORE);
        if (flag) return;
        sleep_ms(backoff);
        backoff = backoff * 2 > 2 ? 2 : backoff * 2;
    }
}

void probe_quietly(int source, MPI_Comm comm, MPI_Status *st) {
    double backoff = 0.02;
    for (;;) {
        int flag = 0;
        MPI_Iprobe(source, MPI_ANY_TAG, comm, &flag, st);
        if (flag) return;
        sleep_ms(backoff);
        backoff = backoff * 2 > 2 ? 2 : backoff * 2;
    }
}

void barrier_quietly(MPI_Comm comm) {
    MPI_Request req;
    MPI_Ibarrier(comm, &req);
    wait_quietly(&req);
}

void bcast_quietly(void *buf, int count, MPI_Datatype type, MPI_Comm comm) {
    MPI_Request req;
    MPI_Ibcast(buf, count, type, 0, comm, &req);
    wait_quietly(&req);
}
