# Training/encoding benchmark against PyTorch (built, never run by ctest):
# tests/bench/run_bench_train.sh drives bench_train and tests/bench/bench_train.py.
# It calls cblas_sgemm and openblas_set_num_threads itself (the GEMM peak), so
# it links OpenBLAS and sees cblas.h directly.
add_executable(bench_train ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_train.c)
target_include_directories(bench_train PRIVATE ${AE_CBLAS_INCLUDE_DIR})
target_link_libraries(bench_train PRIVATE autoenc_static BLAS::BLAS m Threads::Threads)
ae_target_warnings(bench_train)
