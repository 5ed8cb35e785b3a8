# Data-source benchmark (built, never run by ctest): tests/bench/bench_source.c
# times the training paths side by side (ae_train_fit, in-memory float and
# uint8 sources, a .npy file) and out-of-core training from a large file.
add_executable(bench_source ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_source.c)
target_link_libraries(bench_source PRIVATE autoenc_static m Threads::Threads)
ae_target_warnings(bench_source)
