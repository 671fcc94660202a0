#include "include/CCurlShim.h"
