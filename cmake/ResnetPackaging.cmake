# resnet.cpp as a library for other C++ projects (included once from the root CMakeLists.txt).
#
#  - `resnet` (static; tests, benchmarks and the CLI link it) is compiled position-independent,
#    and `resnet_shared` (libresnet.so) is linked from the same object files, so every source is
#    compiled once. The shared library takes the static one's link libraries, whatever they are.
#  - `cmake --install` puts include/resnet/*.h, libresnet.a, libresnet.so, the `resnet` binary, a
#    CMake package (find_package(resnet) -> resnet::resnet = shared, resnet::resnet_static) and
#    resnet.pc (pkg-config; `--static` adds the private dependencies).
#  - resnet_header_check: one generated translation unit per public header, compiled with only
#    include/ on the include path, so every header compiles on its own.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(resnet PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME resnet_static)
target_include_directories(resnet PUBLIC $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
# The public headers use C++20 (std::span, designated initializers in examples).
target_compile_features(resnet PUBLIC cxx_std_20)

add_library(resnet_shared SHARED $<TARGET_OBJECTS:resnet>)
add_library(resnet::resnet_shared ALIAS resnet_shared)
set_target_properties(resnet_shared PROPERTIES
  OUTPUT_NAME resnet
  EXPORT_NAME resnet
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
target_include_directories(resnet_shared PUBLIC
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(resnet_shared PUBLIC cxx_std_20)
# Everything the static library links (oneDNN, OpenMP, HDF5, ...), also what other parts of the
# build add to `resnet` later, stays private to the shared library.
target_link_libraries(resnet_shared PRIVATE $<TARGET_PROPERTY:resnet,LINK_LIBRARIES>)
# Every symbol resolved at link time: a dependency missing here fails the build, not the user.
target_link_options(resnet_shared PRIVATE LINKER:--no-undefined)

install(TARGETS resnet resnet_shared EXPORT resnetTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS resnet_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/resnet
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

# Optional dependencies that other parts of the build link into `resnet` (MPI, ONNX): the
# package config must find them too for resnet::resnet_static.
set(RESNET_EXTRA_DEPENDENCIES "")
set(RESNET_PC_EXTRA_LIBS "")
get_target_property(_resnet_links resnet LINK_LIBRARIES)
foreach(_lib IN LISTS _resnet_links)
  if(_lib MATCHES "^MPI::" AND NOT RESNET_EXTRA_DEPENDENCIES MATCHES "MPI")
    # FindMPI's C component needs the C language enabled in the consumer's project: the link
    # libraries found here are enough (no MPI type appears in the public headers).
    string(APPEND RESNET_EXTRA_DEPENDENCIES
      "if(NOT TARGET ${_lib})\n"
      "  if(\"C\" IN_LIST _resnet_languages)\n"
      "    find_dependency(MPI COMPONENTS C)\n"
      "  else()\n"
      "    add_library(${_lib} INTERFACE IMPORTED)\n"
      "    set_target_properties(${_lib} PROPERTIES INTERFACE_LINK_LIBRARIES \"${MPI_C_LIBRARIES}\")\n"
      "  endif()\n"
      "endif()\n")
    foreach(_mpi_lib IN LISTS MPI_C_LIBRARIES)
      get_filename_component(_dir "${_mpi_lib}" DIRECTORY)
      get_filename_component(_name "${_mpi_lib}" NAME_WE)
      string(REGEX REPLACE "^lib" "" _name "${_name}")
      list(APPEND RESNET_PC_EXTRA_LIBS "-L${_dir}" "-l${_name}")
    endforeach()
  elseif(_lib MATCHES "^protobuf::" AND NOT RESNET_EXTRA_DEPENDENCIES MATCHES "Protobuf")
    string(APPEND RESNET_EXTRA_DEPENDENCIES "find_dependency(Protobuf)\n")
    list(APPEND RESNET_PC_EXTRA_LIBS -lprotobuf)
  elseif(_lib MATCHES "^(ONNX::|onnx)" AND NOT RESNET_EXTRA_DEPENDENCIES MATCHES "ONNX")
    string(APPEND RESNET_EXTRA_DEPENDENCIES "find_dependency(ONNX)\n")
    list(APPEND RESNET_PC_EXTRA_LIBS -lonnx_proto)
  elseif(_lib MATCHES "::" AND NOT _lib MATCHES "^(DNNL|OpenMP|fmt|PkgConfig|HDF5|ZLIB)::")
    message(WARNING "resnet links ${_lib}: add it to cmake/resnetConfig.cmake.in and resnet.pc.in")
  endif()
endforeach()
if(RESNET_PC_EXTRA_LIBS)
  list(JOIN RESNET_PC_EXTRA_LIBS " " RESNET_PC_EXTRA_LIBS)
  set(RESNET_PC_EXTRA_LIBS " ${RESNET_PC_EXTRA_LIBS}")
endif()

set(RESNET_HDF5_LIBRARIES ${HDF5_C_LIBRARIES})
if(NOT RESNET_HDF5_LIBRARIES)
  set(RESNET_HDF5_LIBRARIES ${HDF5_LIBRARIES})
endif()

set(RESNET_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/resnet)
install(EXPORT resnetTargets NAMESPACE resnet:: DESTINATION ${RESNET_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/resnetConfig.cmake.in
  ${CMAKE_BINARY_DIR}/resnetConfig.cmake
  INSTALL_DESTINATION ${RESNET_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/resnetConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/resnetConfig.cmake ${CMAKE_BINARY_DIR}/resnetConfigVersion.cmake
  DESTINATION ${RESNET_CMAKE_DIR})

# pkg-config: relocatable (the prefix is found from the .pc file's own folder).
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(RESNET_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(RESNET_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH RESNET_PC_UP "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" RESNET_PC_UP "${RESNET_PC_UP}")
  set(RESNET_PC_PREFIX "\${pcfiledir}/${RESNET_PC_UP}")
  set(RESNET_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(RESNET_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(RESNET_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_SOURCE_DIR}/resnet.pc.in ${CMAKE_BINARY_DIR}/resnet.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/resnet.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(RESNET_BUILD_TESTS)
  add_subdirectory(${CMAKE_SOURCE_DIR}/tests/headers ${CMAKE_BINARY_DIR}/tests/headers)
  # An outside project cannot link a sanitized library without the sanitizer flags of its own;
  # the package test runs in the normal build.
  if(NOT RESNET_SANITIZE)
    add_subdirectory(${CMAKE_SOURCE_DIR}/tests/install ${CMAKE_BINARY_DIR}/tests/install)
  endif()
endif()

# docs/cli.md is generated from the binary's --help (scripts/gen_cli_docs.sh); this test fails, and
# says how to regenerate, when a command or flag changed without regenerating.
if(RESNET_BUILD_TESTS)
  add_test(NAME cli_docs_up_to_date
    COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/gen_cli_docs.sh --check $<TARGET_FILE:resnet_cli>)
endif()
