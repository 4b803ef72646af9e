import { hostname } from 'node:os';

/**
 * What error bodies name as their `instance`: this machine's host name, as Conductor does. Behind
 * a load balancer it tells which replica answered; in a container it is the container's name.
 */
export const SERVER_INSTANCE = hostname();
