#include <cblas.h>

/* OpenBLAS entry points that cblas.h does not declare (driver/others/openblas_env.c, driver/others/blas_server.c),
   for BLAS.pool in Sources/Tensor/BLAS.swift. */
void openblas_read_env(void);
int openblas_thread_timeout(void);
int blas_thread_shutdown_(void);
