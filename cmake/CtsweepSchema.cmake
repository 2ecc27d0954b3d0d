# Embeds hdf5_schema/schema.txt into the library as CTSWEEP_SCHEMA_TXT, so
# `ctsweep validate` checks against exactly the file in the repository.
set(_schema ${CMAKE_SOURCE_DIR}/hdf5_schema/schema.txt)
set(_out ${CMAKE_BINARY_DIR}/generated/schema_embed.c)
file(READ ${_schema} _text)
string(REPLACE "\\" "\\\\" _text "${_text}")
string(REPLACE "\"" "\\\"" _text "${_text}")
string(REPLACE "\n" "\\n\"\n    \"" _text "${_text}")
file(WRITE ${_out}.in "/* Generated from hdf5_schema/schema.txt; do not edit. */\nconst char CTSWEEP_SCHEMA_TXT[] =\n    \"${_text}\";\n")
configure_file(${_out}.in ${_out} COPYONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_schema})
set(CTSWEEP_SCHEMA_SOURCE ${_out})
