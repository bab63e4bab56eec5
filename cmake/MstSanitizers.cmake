# -DMST_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer for every target
# (scripts/test_sanitized.sh). Reports name functions from the symbol table; add -g to
# CMAKE_CXX_FLAGS for file:line (it costs a third more build time).
add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
add_link_options(-fsanitize=address,undefined)
