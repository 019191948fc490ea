/* Compiles the system's llhttp source api.c (found through -I$(LLHTTP_SRCDIR)
 * by configure) into the build; nothing of llhttp is kept in this tree. */
#include <api.c>
