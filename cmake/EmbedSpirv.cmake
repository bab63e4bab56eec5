# Compile every backends/vulkan/shaders/*.comp to SPIR-V with glslangValidator at build
# time and embed the words in the library, so no shader file is needed at run time.
#
# A shader may declare variants, one per line:   //! variant <name> [-DNAME=VALUE ...]
# each compiled with its own defines; a shader without any is one variant named after
# its file. *.glsl files are shared includes (GL_GOOGLE_include_directive).
#
# mst_embed_spirv(<out_var> <shader_dir> <build_dir>) sets <out_var> to the generated
# .cpp, which defines mst::vk_spirv_find() (backends/vulkan/spirv_table.h).
set(MST_EMBED_SPIRV_GENERATOR ${CMAKE_CURRENT_LIST_DIR}/EmbedSpirvGenerate.cmake)

function(mst_embed_spirv out_var shader_dir build_dir)
  file(GLOB shaders CONFIGURE_DEPENDS ${shader_dir}/*.comp)
  file(GLOB includes CONFIGURE_DEPENDS ${shader_dir}/*.glsl)
  set(spv_files "")
  set(spv_names "")
  foreach(src ${shaders})
    get_filename_component(base ${src} NAME_WE)
    file(STRINGS ${src} variant_lines REGEX "^//! variant ")
    # Re-run configure when the variant list changes.
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
    if(NOT variant_lines)
      set(variant_lines "//! variant ${base}")
    endif()
    foreach(line ${variant_lines})
      string(REGEX REPLACE "^//! variant +" "" spec "${line}")
      separate_arguments(words UNIX_COMMAND "${spec}")
      list(POP_FRONT words name)
      set(spv ${build_dir}/${name}.spv)
      add_custom_command(OUTPUT ${spv}
        COMMAND ${CMAKE_COMMAND} -E make_directory ${build_dir}
        COMMAND ${MST_GLSLANG} -V --target-env vulkan1.1 ${words} -o ${spv} ${src}
        DEPENDS ${src} ${includes}
        COMMENT "SPIR-V ${name}"
        VERBATIM)
      list(APPEND spv_files ${spv})
      list(APPEND spv_names ${name})
    endforeach()
  endforeach()
  set(cpp ${build_dir}/spirv_table.cpp)
  add_custom_command(OUTPUT ${cpp}
    COMMAND ${CMAKE_COMMAND} "-DNAMES=${spv_names}" "-DFILES=${spv_files}" -DOUT=${cpp} -P ${MST_EMBED_SPIRV_GENERATOR}
    DEPENDS ${spv_files} ${MST_EMBED_SPIRV_GENERATOR}
    COMMENT "Embedding SPIR-V modules"
    VERBATIM)
  set(${out_var} ${cpp} PARENT_SCOPE)
endfunction()
