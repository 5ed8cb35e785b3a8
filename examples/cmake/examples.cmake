# One program per tutorial section.
foreach(example simple_autoencoder deep_autoencoder conv_autoencoder image_retrieval
        denoising_autoencoder sparse_autoencoder
        variational_autoencoder)
  add_executable(${example} ${CMAKE_CURRENT_SOURCE_DIR}/${example}.c)
  target_link_libraries(${example} PRIVATE ae_example_support)
  ae_target_warnings(${example})
endforeach()

# Data-parallel training and sharded search over MPI (libautoenc_mpi), run
# with mpirun: only when the MPI component is built.
if(AE_BUILD_MPI)
  add_executable(distributed_train ${CMAKE_CURRENT_SOURCE_DIR}/distributed_train.c)
  target_link_libraries(distributed_train PRIVATE ae_example_support autoenc_mpi)
  ae_target_warnings(distributed_train)
endif()
