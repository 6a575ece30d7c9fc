// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Shadow doorbells: a page of host memory that the uverbs core owns for a
 * user context. Userspace maps it (mmap() at the returned offset) and
 * exports it as a dma-buf (UVERBS_METHOD_DMABUF_ALLOC), exactly as a
 * driver's doorbell page of rdma_user_mmap_entry_insert_host().
 *
 * It is for CPU proxies: when a peer device cannot ring a NIC's real
 * doorbell, it rings the shadow, and a thread of the process watches the
 * shadow and rings the NIC. Unlike a page from the system dma-buf heap,
 * the shadow goes the way of a doorbell: destroying the object, closing
 * the context or disassociating the device revokes its dma-buf exports,
 * so that an importer is told (invalidate_mappings) and its access ends.
 * The page itself is freed when the last mapping and export let go of it.
 */

#include <rdma/ib_p2p_mmap.h>
#include <rdma/uverbs_std_types.h>
#include "rdma_core.h"
#include "uverbs.h"

static int uverbs_free_shadow_db(struct ib_uobject *uobject,
				 enum rdma_remove_reason why,
				 struct uverbs_attr_bundle *attrs)
{
	/* Revokes the exports; waits until their importers have unmapped. */
	rdma_user_mmap_entry_remove(uobject->object);
	return 0;
}

static int
UVERBS_HANDLER(UVERBS_METHOD_SHADOW_DB_ALLOC)(struct uverbs_attr_bundle *attrs)
{
	struct ib_uobject *uobj =
		uverbs_attr_get(attrs, UVERBS_ATTR_SHADOW_DB_ALLOC_HANDLE)
			->obj_attr.uobject;
	struct rdma_user_mmap_entry *entry;
	u64 offset, length;
	int ret;

	/* A peer rings (writes) a doorbell; it has nothing to read there. */
	entry = rdma_user_mmap_core_host_alloc(attrs->context,
					       RDMA_P2P_PEER_WRITE);
	if (IS_ERR(entry))
		return PTR_ERR(entry);
	/* From here, a failure of the method destroys it again. */
	uobj->object = entry;
	uverbs_finalize_uobj_create(attrs, UVERBS_ATTR_SHADOW_DB_ALLOC_HANDLE);

	offset = rdma_user_mmap_get_offset(entry);
	length = entry->npages << PAGE_SHIFT;
	ret = uverbs_copy_to(attrs, UVERBS_ATTR_SHADOW_DB_ALLOC_MMAP_OFFSET,
			     &offset, sizeof(offset));
	if (ret)
		return ret;
	return uverbs_copy_to(attrs, UVERBS_ATTR_SHADOW_DB_ALLOC_MMAP_LENGTH,
			      &length, sizeof(length));
}

DECLARE_UVERBS_NAMED_METHOD(UVERBS_METHOD_SHADOW_DB_ALLOC,
			    UVERBS_ATTR_IDR(UVERBS_ATTR_SHADOW_DB_ALLOC_HANDLE,
					    UVERBS_OBJECT_SHADOW_DB,
					    UVERBS_ACCESS_NEW,
					    UA_MANDATORY),
			    UVERBS_ATTR_PTR_OUT(UVERBS_ATTR_SHADOW_DB_ALLOC_MMAP_OFFSET,
						UVERBS_ATTR_TYPE(u64),
						UA_MANDATORY),
			    UVERBS_ATTR_PTR_OUT(UVERBS_ATTR_SHADOW_DB_ALLOC_MMAP_LENGTH,
						UVERBS_ATTR_TYPE(u64),
						UA_MANDATORY));

DECLARE_UVERBS_NAMED_METHOD_DESTROY(UVERBS_METHOD_SHADOW_DB_DESTROY,
				    UVERBS_ATTR_IDR(UVERBS_ATTR_SHADOW_DB_DESTROY_HANDLE,
						    UVERBS_OBJECT_SHADOW_DB,
						    UVERBS_ACCESS_DESTROY,
						    UA_MANDATORY));

DECLARE_UVERBS_NAMED_OBJECT(UVERBS_OBJECT_SHADOW_DB,
			    UVERBS_TYPE_ALLOC_IDR(uverbs_free_shadow_db),
			    &UVERBS_METHOD(UVERBS_METHOD_SHADOW_DB_ALLOC),
			    &UVERBS_METHOD(UVERBS_METHOD_SHADOW_DB_DESTROY));

/* Devices whose mmap offsets the core may share (mmap_core_entries). */
const struct uapi_definition uverbs_def_obj_shadow_db[] = {
	UAPI_DEF_CHAIN_OBJ_TREE_NAMED(UVERBS_OBJECT_SHADOW_DB,
				      UAPI_DEF_IS_OBJ_SUPPORTED(rdma_user_mmap_core_supported)),
	{}
};
