/*
 * quiet_wait.h — MPI waits for ranks with nothing to do.
 *
 * Open MPI's blocking calls poll at full speed: a rank with nothing to do
 * (a worker waiting for work or for the end, the rest of a group waiting for
 * its leader) would take a core from the ranks that train. These poll with a
 * sleeping back-off instead, adding at most 2 ms of latency.
 */
#ifndef CTSWEEP_SWEEP_QUIET_WAIT_H
#define CTSWEEP_SWEEP_QUIET_WAIT_H

#include <mpi.h>

void sleep_ms(double ms);
// Until req completes.
void wait_quietly(MPI_Request *req);
// Until a message from source (or MPI_ANY_SOURCE) is there to receive; st describes it.
void probe_quietly(int source, MPI_Comm comm, MPI_Status *st);
void barrier_quietly(MPI_Comm comm);
// MPI_Bcast from rank 0 of comm.
void bcast_quietly(void *buf, int count, MPI_Datatype type, MPI_Comm comm);

#endif
