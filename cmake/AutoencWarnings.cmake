# Warnings used for every target of the project.
set(AE_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wno-unused-parameter)
function(ae_target_warnings target)
  target_compile_options(${target} PRIVATE ${AE_WARNINGS})
endfunction()
