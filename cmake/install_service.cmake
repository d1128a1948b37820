# Runs inside `cmake --install` (install(SCRIPT) in install.cmake, which sets
# the importwatch_* variables): installs the systemd unit with this prefix's
# paths, and the default config unless one is there already.

function(importwatch_full_path out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

importwatch_full_path(bindir "${importwatch_bindir}")
importwatch_full_path(sysconfdir "${importwatch_sysconfdir}")
importwatch_full_path(docdir "${importwatch_docdir}")
set(staging "${importwatch_binary_dir}/install-staging")
file(MAKE_DIRECTORY "${staging}")

if(importwatch_unit_dir)
  importwatch_full_path(unit_dir "${importwatch_unit_dir}")
  # systemd/importwatch.service is written for the default prefix; put this
  # install's paths in its place.
  file(READ "${importwatch_source_dir}/systemd/importwatch.service" unit)
  foreach(pair "/usr/local/bin/|${bindir}/"
               "/etc/importwatch/|${sysconfdir}/importwatch/"
               "/usr/local/share/doc/importwatch/|${docdir}/")
    string(REPLACE "|" ";" pair "${pair}")
    list(GET pair 0 from)
    list(GET pair 1 to)
    string(FIND "${unit}" "${from}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "systemd/importwatch.service no longer mentions ${from}: update cmake/install_service.cmake")
    endif()
    string(REPLACE "${from}" "${to}" unit "${unit}")
  endforeach()
  file(WRITE "${staging}/importwatch.service" "${unit}")
  file(INSTALL DESTINATION "${unit_dir}" TYPE FILE FILES "${staging}/importwatch.service")
endif()

# The default config: config/example.yaml, plus (for the unit) the token
# from the credential the unit loads. An existing config is an operator's:
# it is never overwritten.
set(config "${sysconfdir}/importwatch/config.yaml")
if(EXISTS "$ENV{DESTDIR}${config}")
  message(STATUS "Keeping: $ENV{DESTDIR}${config}")
else()
  file(READ "${importwatch_source_dir}/config/example.yaml" example)
  if(importwatch_unit_dir)
    if(example MATCHES "(^|\n)launchdarkly:")
      message(FATAL_ERROR "config/example.yaml has a launchdarkly: section now: merge the token_file line into it here")
    endif()
    string(APPEND example "
# Installed for the systemd unit: the API token is the credential it loads
# (LoadCredential=ld-token:${sysconfdir}/importwatch/ld-token), which
# systemd hands over in $CREDENTIALS_DIRECTORY. Not LD_API_TOKEN.
launchdarkly:
  token_file: \${CREDENTIALS_DIRECTORY}/ld-token
")
  endif()
  file(WRITE "${staging}/config.yaml" "${example}")
  file(INSTALL DESTINATION "${sysconfdir}/importwatch" TYPE FILE FILES "${staging}/config.yaml")
endif()
