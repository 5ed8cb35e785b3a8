# libautoenc_mpi under mpirun (label `mpi`; tests/mpi/test_mpi.c). Run as
# root (CI machines) mpirun needs --allow-run-as-root; --oversubscribe lets 2
# ranks run on a 1-core machine. Without the component (AE_BUILD_MPI=OFF) a
# test that says so is registered instead and skips.
if(AE_BUILD_MPI)
  if(NOT AE_MPIEXEC)
    message(FATAL_ERROR "AE_BUILD_MPI=ON but no mpirun was found (openmpi-bin)")
  endif()
  add_executable(test_mpi ${PROJECT_SOURCE_DIR}/tests/mpi/test_mpi.c)
  target_link_libraries(test_mpi PRIVATE autoenc_mpi m)
  ae_target_warnings(test_mpi)
  set(_ae_mpirun ${AE_MPIEXEC} --allow-run-as-root --oversubscribe --mca btl self,vader -np 2)
  add_test(NAME mpi_equivalence COMMAND ${_ae_mpirun} $<TARGET_FILE:test_mpi> equivalence)
  set_tests_properties(mpi_equivalence PROPERTIES LABELS mpi TIMEOUT 300
    PASS_REGULAR_EXPRESSION "equivalence: ok"
    FAIL_REGULAR_EXPRESSION "FAIL"
    ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
  # rank 1 never trains: rank 0 must give up after its 1 s timeout and end
  # the job with MPI_Abort (so the exit status is not what counts)
  add_test(NAME mpi_dead_peer COMMAND ${_ae_mpirun} $<TARGET_FILE:test_mpi> dead-peer)
  set_tests_properties(mpi_dead_peer PROPERTIES LABELS mpi TIMEOUT 120
    PASS_REGULAR_EXPRESSION "dead-peer: ok"
    FAIL_REGULAR_EXPRESSION "FAIL"
    ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
else()
  add_test(NAME mpi_component COMMAND ${CMAKE_COMMAND} -E echo
    "libautoenc_mpi is not built (configure with -DAE_BUILD_MPI=ON): its mpirun tests are skipped")
  set_tests_properties(mpi_component PROPERTIES LABELS mpi SKIP_REGULAR_EXPRESSION "is not built")
endif()
