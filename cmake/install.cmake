# What `cmake --install` puts where (GNUInstallDirs): the binary, the systemd
# unit, the default config and the documents.
#   cmake --install build                      # into CMAKE_INSTALL_PREFIX (/usr/local)
#   DESTDIR=/tmp/stage cmake --install build   # staged, for packages and images

install(TARGETS importwatch RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES README.md LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES config/example.yaml config/reference.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR}/config)

# The unit only with sd_notify support: Type=notify waits for READY=1.
if(IMPORTWATCH_HAVE_SYSTEMD)
  pkg_get_variable(systemd_unit_dir systemd systemdsystemunitdir)
  if(NOT systemd_unit_dir)
    set(systemd_unit_dir lib/systemd/system)
  endif()
  set(IMPORTWATCH_SYSTEMD_UNIT_DIR "${systemd_unit_dir}" CACHE PATH
      "where the systemd unit is installed (relative to the prefix, or absolute)")
  set(unit_dir "${IMPORTWATCH_SYSTEMD_UNIT_DIR}")
else()
  set(unit_dir "")
endif()

# The unit's paths and the default config are settled at install time, when
# the prefix is final (`cmake --install --prefix` may change it).
install(CODE "
  set(importwatch_source_dir [[${PROJECT_SOURCE_DIR}]])
  set(importwatch_binary_dir [[${PROJECT_BINARY_DIR}]])
  set(importwatch_bindir [[${CMAKE_INSTALL_BINDIR}]])
  set(importwatch_sysconfdir [[${CMAKE_INSTALL_SYSCONFDIR}]])
  set(importwatch_docdir [[${CMAKE_INSTALL_DOCDIR}]])
  set(importwatch_unit_dir [[${unit_dir}]])
")
install(SCRIPT cmake/install_service.cmake)
