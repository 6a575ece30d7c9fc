// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * p2p_accel: the PCI driver for qemu's edu device and the character device
 * /dev/p2p_accelN through which a process uses it as a peer accelerator
 * (uAPI: p2p_accel.h; docs/accel-emulator.md).
 *
 * Contexts: each open() is a context bound to the opening process's mm.
 * Another process that gets the file (fork, SCM_RIGHTS) cannot use it
 * (-EACCES): buffers were pinned in the opener's address space, and a
 * context's handles must not become another process's.
 *
 * Device removal (PCI hot-unplug, unbind) tears every context down while
 * their files stay open: programs stop with -ENODEV, attachments are
 * detached (edu's DMA addresses die with it), buffers unpinned; every later
 * ioctl fails with -ENODEV. The struct accel_dev is freed with the last
 * file.
 */

#include <linux/debugfs.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "accel.h"

MODULE_DESCRIPTION("Peer accelerator on qemu's edu device: rings RDMA doorbells through dma-buf");
MODULE_LICENSE("Dual BSD/GPL");
MODULE_IMPORT_NS("DMA_BUF");

static bool fault_inject;
module_param(fault_inject, bool, 0644);
MODULE_PARM_DESC(fault_inject,
		 "allow P2P_ACCEL_IOC_STALE_DMA, an edu DMA to an unmapped address (tests only)");

static DEFINE_IDA(accel_ida);
static struct dentry *accel_debugfs;

/* ---- contexts ---- */

/*
 * An attachment of @ctx was revoked by its exporter (called under the
 * dma-buf's reservation lock): poll() sees EPOLLPRI, the eventfd counts.
 */
void accel_ctx_notify_revoked(struct accel_ctx *ctx, u32 handle)
{
	spin_lock(&ctx->ev_lock);
	ctx->revoked |= BIT_ULL(handle);
	if (ctx->evfd)
		eventfd_signal(ctx->evfd);
	spin_unlock(&ctx->ev_lock);
	wake_up_interruptible_poll(&ctx->wq, EPOLLPRI);
}

/*
 * Stop the program and free every object; ctx->lock held. Used by close
 * and by device removal.
 */
static void accel_ctx_teardown(struct accel_ctx *ctx, int why)
{
	struct accel_att *att;
	struct accel_buf *buf;
	unsigned long i;

	accel_prog_cancel(ctx, why);
	xa_for_each(&ctx->atts, i, att) {
		xa_erase(&ctx->atts, i);
		accel_att_destroy(att);
	}
	xa_for_each(&ctx->bufs, i, buf) {
		xa_erase(&ctx->bufs, i);
		accel_buf_destroy(ctx, buf);
	}
}

static int accel_open(struct inode *inode, struct file *file)
{
	struct accel_dev *adev = container_of(file->private_data,
					      struct accel_dev, misc);
	struct accel_ctx *ctx;

	ctx = kzalloc_obj(*ctx);
	if (!ctx)
		return -ENOMEM;
	mutex_init(&ctx->lock);
	xa_init_flags(&ctx->atts, XA_FLAGS_ALLOC);
	xa_init_flags(&ctx->bufs, XA_FLAGS_ALLOC);
	init_waitqueue_head(&ctx->wq);
	spin_lock_init(&ctx->ev_lock);
	ctx->mm = current->mm;
	mmgrab(ctx->mm);

	mutex_lock(&adev->lock);
	if (adev->removed) {
		mutex_unlock(&adev->lock);
		mmdrop(ctx->mm);
		kfree(ctx);
		return -ENODEV;
	}
	kref_get(&adev->kref);
	ctx->adev = adev;
	list_add(&ctx->node, &adev->ctxs);
	mutex_unlock(&adev->lock);

	file->private_data = ctx;
	return nonseekable_open(inode, file);
}

static int accel_release(struct inode *inode, struct file *file)
{
	struct accel_ctx *ctx = file->private_data;
	struct accel_dev *adev = ctx->adev;

	mutex_lock(&adev->lock);
	list_del(&ctx->node);
	mutex_unlock(&adev->lock);

	mutex_lock(&ctx->lock);
	accel_ctx_teardown(ctx, -ECANCELED);
	accel_prog_release(ctx);
	mutex_unlock(&ctx->lock);

	if (ctx->evfd)
		eventfd_ctx_put(ctx->evfd);
	xa_destroy(&ctx->atts);
	xa_destroy(&ctx->bufs);
	mmdrop(ctx->mm);
	kfree(ctx);
	accel_dev_put(adev);
	return 0;
}

static __poll_t accel_poll(struct file *file, poll_table *wait)
{
	struct accel_ctx *ctx = file->private_data;
	__poll_t mask = 0;

	poll_wait(file, &ctx->wq, wait);
	spin_lock(&ctx->ev_lock);
	if (ctx->revoked)
		mask |= EPOLLPRI;
	spin_unlock(&ctx->ev_lock);
	mutex_lock(&ctx->lock);
	if (ctx->prog && !accel_prog_running(ctx))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (ctx->dead)
		mask |= EPOLLERR | EPOLLHUP;
	mutex_unlock(&ctx->lock);
	return mask;
}

/* ---- ioctls ---- */

static int accel_ioc_info(struct accel_ctx *ctx, void __user *arg)
{
	struct accel_dev *adev = ctx->adev;
	struct p2p_accel_info info = {
		.abi_version = P2P_ACCEL_ABI_VERSION,
		.dma_mask_bits = adev->iommu ? ACCEL_EDU_DMA_BITS : 64,
		.max_ops = ACCEL_MAX_OPS,
		.max_loop_depth = ACCEL_MAX_LOOP_DEPTH,
		.max_delay_us = ACCEL_MAX_DELAY_US,
		.max_steps = ACCEL_MAX_STEPS,
		.max_timeout_us = ACCEL_MAX_TIMEOUT_US,
		.max_attach = ACCEL_MAX_ATTACH,
		.max_bufs = ACCEL_MAX_BUFS,
		.max_buf_bytes = ACCEL_MAX_BUF_BYTES,
	};

	if (adev->iommu)
		info.flags |= P2P_ACCEL_DEV_IOMMU | P2P_ACCEL_DEV_DMA_RING;
	if (READ_ONCE(fault_inject))
		info.flags |= P2P_ACCEL_DEV_FAULT_INJECT;
	strscpy(info.pci_name, pci_name(adev->pdev));
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static int accel_ioc_attach(struct accel_ctx *ctx, void __user *arg)
{
	struct p2p_accel_attach req;
	struct accel_att *att;
	u32 handle;
	int ret;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.reserved)
		return -EINVAL;
	/* the handle first, so that a full table costs no attachment */
	ret = xa_alloc(&ctx->atts, &handle, XA_ZERO_ENTRY,
		       XA_LIMIT(0, ACCEL_MAX_ATTACH - 1), GFP_KERNEL);
	if (ret)
		return ret == -EBUSY ? -ENOSPC : ret;
	/* a stale revocation event of an earlier owner of the handle */
	spin_lock(&ctx->ev_lock);
	ctx->revoked &= ~BIT_ULL(handle);
	spin_unlock(&ctx->ev_lock);
	att = accel_att_create(ctx, req.fd, handle);
	if (IS_ERR(att)) {
		/* an export revoked before the attach is no event: ENODEV says it */
		spin_lock(&ctx->ev_lock);
		ctx->revoked &= ~BIT_ULL(handle);
		spin_unlock(&ctx->ev_lock);
		xa_erase(&ctx->atts, handle);
		return PTR_ERR(att);
	}
	xa_store(&ctx->atts, handle, att, GFP_KERNEL);

	req.handle = handle;
	req.size = att->dmabuf->size;
	if (copy_to_user(arg, &req, sizeof(req))) {
		xa_erase(&ctx->atts, handle);
		accel_att_destroy(att);
		return -EFAULT;
	}
	return 0;
}

static int accel_ioc_detach(struct accel_ctx *ctx, void __user *arg)
{
	struct accel_att *att;
	u32 handle;

	if (get_user(handle, (u32 __user *)arg))
		return -EFAULT;
	att = xa_load(&ctx->atts, handle);
	if (!att)
		return -ENOENT;
	if (accel_prog_uses(ctx, att))
		return -EBUSY;
	xa_erase(&ctx->atts, handle);
	accel_att_destroy(att);
	return 0;
}

static int accel_ioc_query_attach(struct accel_ctx *ctx, void __user *arg)
{
	struct p2p_accel_attach_query q;
	struct accel_att *att;
	u32 handle;

	if (get_user(handle, (u32 __user *)arg))
		return -EFAULT;
	att = xa_load(&ctx->atts, handle);
	if (!att)
		return -ENOENT;
	memset(&q, 0, sizeof(q));
	q.handle = handle;
	accel_att_query(att, &q);
	return copy_to_user(arg, &q, sizeof(q)) ? -EFAULT : 0;
}

static int accel_ioc_reg_buf(struct accel_ctx *ctx, void __user *arg)
{
	struct p2p_accel_reg_buf req;
	struct accel_buf *buf;
	u32 handle;
	int ret;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	ret = xa_alloc(&ctx->bufs, &handle, XA_ZERO_ENTRY,
		       XA_LIMIT(0, ACCEL_MAX_BUFS - 1), GFP_KERNEL);
	if (ret)
		return ret == -EBUSY ? -ENOSPC : ret;
	buf = accel_buf_create(ctx, &req);
	if (IS_ERR(buf)) {
		xa_erase(&ctx->bufs, handle);
		return PTR_ERR(buf);
	}
	buf->handle = handle;
	xa_store(&ctx->bufs, handle, buf, GFP_KERNEL);
	req.handle = handle;
	if (copy_to_user(arg, &req, sizeof(req))) {
		xa_erase(&ctx->bufs, handle);
		accel_buf_destroy(ctx, buf);
		return -EFAULT;
	}
	return 0;
}

static int accel_ioc_dereg_buf(struct accel_ctx *ctx, void __user *arg)
{
	struct accel_buf *buf;
	u32 handle;

	if (get_user(handle, (u32 __user *)arg))
		return -EFAULT;
	buf = xa_load(&ctx->bufs, handle);
	if (!buf)
		return -ENOENT;
	if (accel_prog_uses(ctx, buf))
		return -EBUSY;
	xa_erase(&ctx->bufs, handle);
	accel_buf_destroy(ctx, buf);
	return 0;
}

static int accel_ioc_submit(struct accel_ctx *ctx, void __user *arg)
{
	struct p2p_accel_submit req;
	int ret;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	ret = accel_prog_submit(ctx, &req);
	/* a rejection says where and why */
	if ((!ret || req.bad_reason) && copy_to_user(arg, &req, sizeof(req)))
		return -EFAULT;
	return ret;
}

static int accel_ioc_set_eventfd(struct accel_ctx *ctx, void __user *arg)
{
	struct eventfd_ctx *evfd = NULL, *old;
	s32 fd;

	if (get_user(fd, (s32 __user *)arg))
		return -EFAULT;
	if (fd >= 0) {
		evfd = eventfd_ctx_fdget(fd);
		if (IS_ERR(evfd))
			return PTR_ERR(evfd);
	} else if (fd != -1) {
		return -EINVAL;
	}
	spin_lock(&ctx->ev_lock);
	old = ctx->evfd;
	ctx->evfd = evfd;
	spin_unlock(&ctx->ev_lock);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

static int accel_ioc_get_events(struct accel_ctx *ctx, void __user *arg)
{
	struct p2p_accel_events ev = {};

	spin_lock(&ctx->ev_lock);
	ev.revoked = ctx->revoked;
	ctx->revoked = 0;
	spin_unlock(&ctx->ev_lock);
	return copy_to_user(arg, &ev, sizeof(ev)) ? -EFAULT : 0;
}

static int accel_ioc_stale_dma(struct accel_ctx *ctx, void __user *arg)
{
	struct p2p_accel_stale_dma req;
	struct accel_att *att;
	int ret;

	if (!READ_ONCE(fault_inject))
		return -EPERM;
	if (!ctx->adev->iommu)
		return -EOPNOTSUPP;
	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	att = xa_load(&ctx->atts, req.handle);
	if (!att)
		return -ENOENT;
	if ((req.width != 4 && req.width != 8) || req.offset % req.width ||
	    req.offset > att->dmabuf->size - req.width ||
	    (req.width == 4 && req.value > U32_MAX))
		return -EINVAL;
	ret = accel_att_stale_dma(att, req.offset, req.value, req.width,
				  &req.dma_addr);
	if (ret)
		return ret;
	return copy_to_user(arg, &req, sizeof(req)) ? -EFAULT : 0;
}

static long accel_ioctl(struct file *file, unsigned int cmd, unsigned long a)
{
	struct accel_ctx *ctx = file->private_data;
	void __user *arg = (void __user *)a;
	struct p2p_accel_wait wait;
	long ret;

	if (current->mm != ctx->mm)
		return -EACCES;

	/* WAIT sleeps without the lock, so that CANCEL can get through */
	if (cmd == P2P_ACCEL_IOC_WAIT) {
		if (copy_from_user(&wait, arg, sizeof(wait)))
			return -EFAULT;
		if (wait.flags || wait.reserved)
			return -EINVAL;
		ret = accel_prog_wait(ctx, &wait);
		if (!ret && copy_to_user(arg, &wait, sizeof(wait)))
			return -EFAULT;
		return ret;
	}

	mutex_lock(&ctx->lock);
	if (ctx->dead) {
		ret = cmd == P2P_ACCEL_IOC_GET_EVENTS ?
			accel_ioc_get_events(ctx, arg) : -ENODEV;
		goto out;
	}
	switch (cmd) {
	case P2P_ACCEL_IOC_INFO:
		ret = accel_ioc_info(ctx, arg);
		break;
	case P2P_ACCEL_IOC_ATTACH:
		ret = accel_ioc_attach(ctx, arg);
		break;
	case P2P_ACCEL_IOC_DETACH:
		ret = accel_ioc_detach(ctx, arg);
		break;
	case P2P_ACCEL_IOC_QUERY_ATTACH:
		ret = accel_ioc_query_attach(ctx, arg);
		break;
	case P2P_ACCEL_IOC_REG_BUF:
		ret = accel_ioc_reg_buf(ctx, arg);
		break;
	case P2P_ACCEL_IOC_DEREG_BUF:
		ret = accel_ioc_dereg_buf(ctx, arg);
		break;
	case P2P_ACCEL_IOC_SUBMIT:
		ret = accel_ioc_submit(ctx, arg);
		break;
	case P2P_ACCEL_IOC_CANCEL:
		accel_prog_cancel(ctx, -ECANCELED);
		ret = 0;
		break;
	case P2P_ACCEL_IOC_SET_EVENTFD:
		ret = accel_ioc_set_eventfd(ctx, arg);
		break;
	case P2P_ACCEL_IOC_GET_EVENTS:
		ret = accel_ioc_get_events(ctx, arg);
		break;
	case P2P_ACCEL_IOC_STALE_DMA:
		ret = accel_ioc_stale_dma(ctx, arg);
		break;
	default:
		ret = -ENOTTY;
	}
out:
	mutex_unlock(&ctx->lock);
	return ret;
}

static const struct file_operations accel_fops = {
	.owner = THIS_MODULE,
	.open = accel_open,
	.release = accel_release,
	.unlocked_ioctl = accel_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.poll = accel_poll,
};

/* ---- debugfs: counters and live objects, for tests ---- */

static int accel_stats_show(struct seq_file *s, void *unused)
{
	struct accel_dev *adev = s->private;

	seq_printf(s, "iommu %d\n", adev->iommu);
	seq_printf(s, "dma_xfers %lld\n", atomic64_read(&adev->dma_xfers));
	seq_printf(s, "dma_rings %lld\n", atomic64_read(&adev->dma_rings));
	seq_printf(s, "store_rings %lld\n", atomic64_read(&adev->store_rings));
	seq_printf(s, "programs %lld\n", atomic64_read(&adev->programs));
	seq_printf(s, "programs_failed %lld\n",
		   atomic64_read(&adev->programs_failed));
	seq_printf(s, "programs_rejected %lld\n",
		   atomic64_read(&adev->programs_rejected));
	seq_printf(s, "revocations %lld\n", atomic64_read(&adev->revocations));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(accel_stats);

static int accel_objects_show(struct seq_file *s, void *unused)
{
	seq_printf(s, "attachments %d\n", atomic_read(&accel_live_atts));
	seq_printf(s, "vmaps %d\n", atomic_read(&accel_live_vmaps));
	seq_printf(s, "buffers %d\n", atomic_read(&accel_live_bufs));
	seq_printf(s, "pinned_pages %lld\n", atomic64_read(&accel_pinned_pages));
	seq_printf(s, "programs %d\n", atomic_read(&accel_live_progs));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(accel_objects);

/* ---- PCI ---- */

static void accel_dev_free(struct kref *kref)
{
	struct accel_dev *adev = container_of(kref, struct accel_dev, kref);

	pci_dev_put(adev->pdev);
	ida_free(&accel_ida, adev->id);
	kfree(adev);
}

void accel_dev_put(struct accel_dev *adev)
{
	kref_put(&adev->kref, accel_dev_free);
}

static int accel_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct accel_dev *adev;
	int ret;

	adev = kzalloc_obj(*adev);
	if (!adev)
		return -ENOMEM;
	kref_init(&adev->kref);
	mutex_init(&adev->lock);
	INIT_LIST_HEAD(&adev->ctxs);
	adev->pdev = pci_dev_get(pdev);
	adev->id = ida_alloc(&accel_ida, GFP_KERNEL);
	if (adev->id < 0) {
		ret = adev->id;
		pci_dev_put(pdev);
		kfree(adev);
		return ret;
	}
	snprintf(adev->name, sizeof(adev->name), "p2p_accel%d", adev->id);

	ret = pcim_enable_device(pdev);
	if (ret)
		goto err_put;
	pci_set_master(pdev);
	adev->mmio = pcim_iomap_region(pdev, 0, adev->name);
	if (IS_ERR(adev->mmio)) {
		ret = PTR_ERR(adev->mmio);
		goto err_put;
	}
	ret = accel_edu_init(adev);
	if (ret)
		goto err_put;

	adev->misc.minor = MISC_DYNAMIC_MINOR;
	adev->misc.name = adev->name;
	adev->misc.fops = &accel_fops;
	adev->misc.parent = &pdev->dev;
	adev->misc.mode = 0600;
	ret = misc_register(&adev->misc);
	if (ret)
		goto err_edu;
	pci_set_drvdata(pdev, adev);

	adev->debugfs = debugfs_create_dir(adev->name, accel_debugfs);
	debugfs_create_file("stats", 0400, adev->debugfs, adev,
			    &accel_stats_fops);
	dev_info(&pdev->dev, "%s: edu DMA %s\n", adev->name,
		 adev->iommu ? "through the IOMMU" :
			       "unavailable (no IOMMU), store engine only");
	return 0;

err_edu:
	accel_edu_fini(adev);
err_put:
	accel_dev_put(adev);
	return ret;
}

static void accel_remove(struct pci_dev *pdev)
{
	struct accel_dev *adev = pci_get_drvdata(pdev);
	struct accel_ctx *ctx;

	debugfs_remove_recursive(adev->debugfs);
	misc_deregister(&adev->misc);

	/*
	 * No new context can come (deregistered, and open checks removed
	 * under the lock). Stop the live ones: removed also stops a transfer
	 * from starting (accel_edu_write() checks it under dma_lock).
	 */
	mutex_lock(&adev->lock);
	mutex_lock(&adev->dma_lock);
	adev->removed = true;
	mutex_unlock(&adev->dma_lock);
	list_for_each_entry(ctx, &adev->ctxs, node) {
		mutex_lock(&ctx->lock);
		accel_ctx_teardown(ctx, -ENODEV);
		ctx->dead = true;
		mutex_unlock(&ctx->lock);
		wake_up_interruptible_poll(&ctx->wq, EPOLLERR | EPOLLHUP);
	}
	mutex_unlock(&adev->lock);

	accel_edu_fini(adev);
	/* fences of ours that others still hold have dropped their ops */
	synchronize_rcu();
	accel_dev_put(adev);
}

static const struct pci_device_id accel_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },	/* qemu edu */
	{ }
};
MODULE_DEVICE_TABLE(pci, accel_ids);

static struct pci_driver accel_driver = {
	.name = "p2p_accel",
	.id_table = accel_ids,
	.probe = accel_probe,
	.remove = accel_remove,
};

static int __init accel_init(void)
{
	int ret;

	ret = accel_dmabuf_init();
	if (ret)
		return ret;
	accel_debugfs = debugfs_create_dir("p2p_accel", NULL);
	debugfs_create_file("objects", 0400, accel_debugfs, NULL,
			    &accel_objects_fops);
	ret = pci_register_driver(&accel_driver);
	if (ret) {
		debugfs_remove_recursive(accel_debugfs);
		accel_dmabuf_exit();
	}
	return ret;
}

static void __exit accel_exit(void)
{
	pci_unregister_driver(&accel_driver);
	debugfs_remove_recursive(accel_debugfs);
	accel_dmabuf_exit();
}

module_init(accel_init);
module_exit(accel_exit);
