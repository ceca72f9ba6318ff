/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Packets to their owners: the capture callbacks of every handle (packet,
 * batch flush, read error, end of savefile), the message formats of
 * docs/PROTOCOL.md, and pausing the captures that feed a node whose output
 * buffer is past its high-water mark until it drains.
 */
#ifndef EWP_DELIVER_H
#define EWP_DELIVER_H

#include "dist.h"
#include "handles.h"

int ewp_deliver_attach(struct ewp_handle *h);
void ewp_deliver_start(struct ewp_handle *h);
void ewp_deliver_drained(struct ewp_handles *t, struct ewp_peer *peer);
void ewp_deliver_check(struct ewp_handles *t);

#endif /* EWP_DELIVER_H */
