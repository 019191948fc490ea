/* Telling a service manager (systemd Type=notify) how the process stands. */
#ifndef FG_SD_NOTIFY_H
#define FG_SD_NOTIFY_H

/* Sends <state> ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET. 1 sent,
 * 0 no service manager asked for it, -1 it could not be sent. */
int fg_sd_notify(const char *state);

#endif
