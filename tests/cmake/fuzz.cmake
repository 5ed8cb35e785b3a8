# Fuzzing (docs/reliability.md, tests/fuzz/):
#  - make_seeds: writes seed corpora made by the library (fixture fuzz_seeds);
#  - the index harness also starts from the committed version-1 to version-3
#    index files (tests/data/index-v1, index-v2, index-v3: older formats its
#    loader still reads);
#  - fuzz_replay_<h>: the harnesses built with this compiler and a plain
#    main() (tests/fuzz/replay_main.c), replaying the seeds and every
#    reproducer in tests/fuzz/regressions/<h>/. Labels unit;fuzz, so the
#    asan and valgrind passes replay them too;
#  - fuzz_smoke_<h>: libFuzzer smoke runs (AE_FUZZ_SMOKE_SECONDS, default 4 s
#    per harness; label fuzz), built with clang -fsanitize=fuzzer,address,
#    undefined by tests/fuzz/build_fuzzers.sh. Only in a build without
#    AE_SANITIZE and AE_TEST_LAUNCHER (the normal pass), and only where clang
#    exists (otherwise skipped with a message).
# Long campaigns: FUZZ_SECONDS=600 bash tests/fuzz/run_fuzz.sh
set(AE_FUZZ_DIR ${PROJECT_SOURCE_DIR}/tests/fuzz)
set(AE_FUZZ_HARNESSES npy model index checkpoint)
set(AE_FUZZ_SEEDS ${CMAKE_CURRENT_BINARY_DIR}/fuzz-seeds)
set(AE_FUZZ_EXTRA_SEEDS_index ${PROJECT_SOURCE_DIR}/tests/data/index-v1
  ${PROJECT_SOURCE_DIR}/tests/data/index-v2 ${PROJECT_SOURCE_DIR}/tests/data/index-v3)

add_executable(make_seeds ${AE_FUZZ_DIR}/make_seeds.c)
target_link_libraries(make_seeds PRIVATE ae_test_support autoenc_static m Threads::Threads)
ae_target_warnings(make_seeds)
add_test(NAME fuzz_seeds COMMAND make_seeds ${AE_FUZZ_SEEDS})
set_tests_properties(fuzz_seeds PROPERTIES LABELS "unit;fuzz" FIXTURES_SETUP fuzz_seeds)

foreach(h ${AE_FUZZ_HARNESSES})
  add_executable(fuzz_replay_${h} ${AE_FUZZ_DIR}/fuzz_${h}.c ${AE_FUZZ_DIR}/replay_main.c)
  target_include_directories(fuzz_replay_${h} PRIVATE ${PROJECT_SOURCE_DIR}/lib)
  target_link_libraries(fuzz_replay_${h} PRIVATE ae_test_support autoenc_static m Threads::Threads)
  ae_target_warnings(fuzz_replay_${h})
  add_test(NAME fuzz_replay_${h}
    COMMAND ${AE_TEST_LAUNCHER} $<TARGET_FILE:fuzz_replay_${h}>
            ${AE_FUZZ_DIR}/regressions/${h} ${AE_FUZZ_SEEDS}/${h} ${AE_FUZZ_EXTRA_SEEDS_${h}}
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(fuzz_replay_${h} PROPERTIES LABELS "unit;fuzz"
    FIXTURES_REQUIRED fuzz_seeds ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
endforeach()

find_program(AE_FUZZ_CLANG NAMES clang clang-18 clang-17 clang-16 clang-15 clang-14
  DOC "clang with libFuzzer, for the fuzz smoke tests")
if(NOT AE_SANITIZE AND NOT AE_TEST_LAUNCHER)
  if(AE_FUZZ_CLANG)
    set(AE_FUZZ_SMOKE_SECONDS 4 CACHE STRING "libFuzzer seconds per harness in ctest")
    set(_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
    file(GLOB _lib_srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/lib/*.c ${PROJECT_SOURCE_DIR}/lib/*.h
      ${PROJECT_SOURCE_DIR}/lib/*.inc ${PROJECT_SOURCE_DIR}/include/autoenc/*.h
      ${PROJECT_SOURCE_DIR}/tests/support/*.c ${PROJECT_SOURCE_DIR}/tests/support/*.h)
    set(_bins)
    foreach(h ${AE_FUZZ_HARNESSES})
      list(APPEND _bins ${_out}/fuzz_${h})
    endforeach()
    add_custom_command(OUTPUT ${_bins}
      COMMAND bash ${AE_FUZZ_DIR}/build_fuzzers.sh ${_out} ${AE_FUZZ_CLANG}
      DEPENDS ${_lib_srcs} ${AE_FUZZ_DIR}/build_fuzzers.sh ${AE_FUZZ_DIR}/fuzz_common.h
              ${AE_FUZZ_DIR}/fuzz_npy.c ${AE_FUZZ_DIR}/fuzz_model.c ${AE_FUZZ_DIR}/fuzz_index.c
              ${AE_FUZZ_DIR}/fuzz_checkpoint.c
      COMMENT "Building libFuzzer harnesses with ${AE_FUZZ_CLANG}" VERBATIM)
    add_custom_target(fuzzers ALL DEPENDS ${_bins})
    foreach(h ${AE_FUZZ_HARNESSES})
      add_test(NAME fuzz_smoke_${h}
        COMMAND sh -c "mkdir -p corpus-${h} artifacts && exec \"$0\" \"$@\""
                ${_out}/fuzz_${h} -max_total_time=${AE_FUZZ_SMOKE_SECONDS} -timeout=10
                -rss_limit_mb=2048 -artifact_prefix=artifacts/${h}-
                corpus-${h} ${AE_FUZZ_SEEDS}/${h} ${AE_FUZZ_DIR}/regressions/${h}
                ${AE_FUZZ_EXTRA_SEEDS_${h}}
        WORKING_DIRECTORY ${_out})
      set_tests_properties(fuzz_smoke_${h} PROPERTIES LABELS fuzz FIXTURES_REQUIRED fuzz_seeds
        ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
    endforeach()
  else()
    message(STATUS "clang not found: libFuzzer smoke tests (label fuzz) skipped")
  endif()
endif()
