# One program per tutorial section.
foreach(example simple_autoencoder deep_autoencoder conv_autoencoder image_retrieval)
  add_executable(${example} ${CMAKE_CURRENT_SOURCE_DIR}/${example}.c)
  target_link_libraries(${example} PRIVATE ae_example_support)
  ae_target_warnings(${example})
endforeach()
