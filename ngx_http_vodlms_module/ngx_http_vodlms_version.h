/*
 * The one version string of vodlms: the nginx module logs it at start-up,
 * vodlms-helper prints it (--version) and sends it as its User-Agent, and
 * ./build.sh deb names the packages after it.
 */

#ifndef NGX_HTTP_VODLMS_VERSION_H
#define NGX_HTTP_VODLMS_VERSION_H

#define NGX_HTTP_VODLMS_VERSION  "0.2.0"

#endif /* NGX_HTTP_VODLMS_VERSION_H */
