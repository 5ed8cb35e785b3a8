/* An installed-consumer program of libautoenc_mpi (consumer.sh mpi and the
 * CMake consumer): one rank creates a context, shards, agrees and frees. */
#include <stdio.h>

#include "autoenc/mpi.h"

int main(int argc, char **argv)
{
    ae_mpi *ctx = NULL;
    size_t first = 0, rows = 0;
    ae_status all = AE_ERR_INTERNAL;
    int ok;
    MPI_Init(&argc, &argv);
    ok = ae_mpi_create(&ctx, MPI_COMM_WORLD) == AE_OK &&
         ae_mpi_shard(&first, &rows, ctx, 10) == AE_OK && rows == 10 / (size_t)ae_mpi_size(ctx) &&
         ae_mpi_agree(&all, ctx, AE_OK) == AE_OK && all == AE_OK;
    ae_mpi_free(ctx);
    MPI_Finalize();
    printf("consumer_mpi (%s): %s\n", argc > 1 ? argv[1] : "", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
