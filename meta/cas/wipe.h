/* Wiping what held a key before it is freed: jansson's blocks (it keeps copies of the strings it parses
 * and builds; in a CAS answer one is a volume key in hex) and the answers the server sends. */
#ifndef FS_CAS_WIPE_H
#define FS_CAS_WIPE_H

/* Makes jansson wipe every block it frees, for the whole process (once; both the CAS client and the CAS
 * server call it before their first JSON document). */
void cas_json_wipe_on_free(void);
/* free(p) after wiping the whole block (p from malloc, or NULL). */
void cas_wiping_free(void *p);

#endif
