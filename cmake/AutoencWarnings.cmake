# Warnings used for every target of the project.
option(AE_WERROR "Treat compiler warnings as errors" OFF)
set(AE_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wno-unused-parameter)
if(AE_WERROR)
  list(APPEND AE_WARNINGS -Werror)
endif()
function(ae_target_warnings target)
  target_compile_options(${target} PRIVATE ${AE_WARNINGS})
endfunction()
