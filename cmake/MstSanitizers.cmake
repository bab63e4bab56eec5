# -DMST_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer for every target
# (scripts/test_sanitized.sh). -g1 gives the reports file:line stacks at a fraction of
# what full debug information costs to build.
add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g1)
add_link_options(-fsanitize=address,undefined)
