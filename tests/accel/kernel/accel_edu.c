// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Copyright (c) 2026 rdma-p2p-doorbell developers
 *
 * qemu's edu device as a DMA engine (qemu docs/specs/edu.rst).
 *
 * edu has one DMA engine and a 4 KiB buffer of its own at device address
 * 0x40000. A transfer copies between that buffer and a DMA address, in
 * either direction, and completes about 100 ms of guest time after it was
 * started; then edu raises its interrupt. Its DMA goes through
 * pci_dma_read()/pci_dma_write() in qemu, that is through the guest's
 * IOMMU when there is one, and edu masks addresses with its dma_mask
 * (28 bits by default), so the driver's DMA mask is 28 bits.
 *
 * A ring is two transfers: the value is staged in a coherent page, DMAed
 * into edu's buffer, and from there DMAed to the doorbell's DMA address.
 * Only the second one touches the doorbell.
 */

#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/dma-fence.h>
#include <linux/interrupt.h>
#include <linux/iommu.h>

#include "accel.h"

#define EDU_REG_IDENT		0x00
#define EDU_REG_IRQ_STATUS	0x24
#define EDU_REG_IRQ_ACK		0x64
#define EDU_REG_DMA_SRC		0x80
#define EDU_REG_DMA_DST		0x88
#define EDU_REG_DMA_COUNT	0x90
#define EDU_REG_DMA_CMD		0x98

#define EDU_IDENT_MAGIC		0xed	/* low byte of EDU_REG_IDENT */

#define EDU_DMA_RUN		0x1
#define EDU_DMA_TO_PCI		0x2	/* edu buffer -> DMA address */
#define EDU_DMA_IRQ		0x4
#define EDU_IRQ_DMA		0x100

#define EDU_BUF_ADDR		0x40000
#define EDU_BUF_SIZE		4096

/* A transfer takes ~100 ms; one that has not finished after this is lost. */
#define EDU_DMA_TIMEOUT_MS	2000

static irqreturn_t accel_edu_irq(int irq, void *data)
{
	struct accel_dev *adev = data;
	u32 status = readl(adev->mmio + EDU_REG_IRQ_STATUS);

	if (!status)
		return IRQ_NONE;	/* INTx may be shared */
	writel(status, adev->mmio + EDU_REG_IRQ_ACK);
	if (status & EDU_IRQ_DMA)
		complete(&adev->dma_done);
	return IRQ_HANDLED;
}

/*
 * One transfer of @len bytes between @addr (a DMA address) and edu's
 * buffer at @edu_off. Caller holds dma_lock. edu ignores register writes
 * while a transfer runs, so a transfer that timed out leaves the engine
 * unusable until it finishes: -EIO, and the next one checks again.
 */
static int accel_edu_xfer(struct accel_dev *adev, dma_addr_t addr,
			  u32 edu_off, u32 len, bool to_pci)
{
	void __iomem *mmio = adev->mmio;
	u64 cmd = EDU_DMA_RUN | EDU_DMA_IRQ | (to_pci ? EDU_DMA_TO_PCI : 0);

	lockdep_assert_held(&adev->dma_lock);
	if (readq(mmio + EDU_REG_DMA_CMD) & EDU_DMA_RUN) {
		dev_err(&adev->pdev->dev, "edu DMA engine still busy\n");
		return -EIO;
	}
	reinit_completion(&adev->dma_done);
	writeq(to_pci ? EDU_BUF_ADDR + edu_off : addr, mmio + EDU_REG_DMA_SRC);
	writeq(to_pci ? addr : EDU_BUF_ADDR + edu_off, mmio + EDU_REG_DMA_DST);
	writeq(len, mmio + EDU_REG_DMA_COUNT);
	/* the doorbell value and source are in memory before the start */
	wmb();
	writeq(cmd, mmio + EDU_REG_DMA_CMD);
	atomic64_inc(&adev->dma_xfers);

	if (!wait_for_completion_timeout(&adev->dma_done,
					 msecs_to_jiffies(EDU_DMA_TIMEOUT_MS)) &&
	    (readq(mmio + EDU_REG_DMA_CMD) & EDU_DMA_RUN)) {
		dev_err(&adev->pdev->dev,
			"edu DMA to %pad did not finish in %d ms\n", &addr,
			EDU_DMA_TIMEOUT_MS);
		return -EIO;
	}
	return 0;
}

/**
 * accel_edu_write() - store a value at a DMA address by edu DMA
 * @adev: the accelerator
 * @dst: DMA address for edu (an IOVA behind an IOMMU)
 * @value: stored little-endian
 * @width: 4 or 8 bytes
 *
 * Sleeps for the two transfers (~200 ms).
 *
 * Return: 0, -ENODEV once the
 * device was removed, or -EIO if edu did not finish.
 */
int accel_edu_write(struct accel_dev *adev, dma_addr_t dst, u64 value,
		    u32 width)
{
	int ret;

	mutex_lock(&adev->dma_lock);
	if (adev->removed) {
		ret = -ENODEV;
		goto out;
	}
	if (width == sizeof(u32))
		*(__le32 *)adev->stage = cpu_to_le32(value);
	else
		*(__le64 *)adev->stage = cpu_to_le64(value);
	ret = accel_edu_xfer(adev, adev->stage_dma, 0, width, false);
	if (!ret)
		ret = accel_edu_xfer(adev, dst, 0, width, true);
out:
	mutex_unlock(&adev->dma_lock);
	return ret;
}

int accel_edu_init(struct accel_dev *adev)
{
	struct pci_dev *pdev = adev->pdev;
	struct iommu_domain *domain;
	u32 ident;
	int ret;

	ident = readl(adev->mmio + EDU_REG_IDENT);
	if ((ident & 0xff) != EDU_IDENT_MAGIC) {
		dev_err(&pdev->dev, "not an edu device (ident %#x)\n", ident);
		return -ENODEV;
	}
	/*
	 * Rings by edu DMA need an IOMMU: without one a 28-bit device may be
	 * given swiotlb bounce buffers, and a write to a bounce buffer only
	 * reaches the doorbell at the unmap. The store engine works anyway.
	 * Without an IOMMU edu is never programmed (the DMA engine is refused
	 * at submit), so its mappings only serve the importer's protocol
	 * (attach, map, learn revocation): give it a 64-bit mask there, or a
	 * map of memory above 256 MiB would go through swiotlb, which WARNs
	 * when it cannot bounce below the mask.
	 */
	domain = iommu_get_domain_for_dev(&pdev->dev);
	adev->iommu = domain && iommu_is_dma_domain(domain);
	ret = dma_set_mask_and_coherent(&pdev->dev,
					DMA_BIT_MASK(adev->iommu ?
						     ACCEL_EDU_DMA_BITS : 64));
	if (ret)
		return ret;

	mutex_init(&adev->dma_lock);
	init_completion(&adev->dma_done);
	adev->fence_context = dma_fence_context_alloc(1);
	adev->stage = dma_alloc_coherent(&pdev->dev, PAGE_SIZE,
					 &adev->stage_dma, GFP_KERNEL);
	if (!adev->stage)
		return -ENOMEM;

	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
	if (ret < 0)
		goto err_stage;
	ret = request_irq(pci_irq_vector(pdev, 0), accel_edu_irq, IRQF_SHARED,
			  adev->name, adev);
	if (ret)
		goto err_vectors;
	return 0;

err_vectors:
	pci_free_irq_vectors(pdev);
err_stage:
	dma_free_coherent(&pdev->dev, PAGE_SIZE, adev->stage, adev->stage_dma);
	return ret;
}

/* After every context was torn down: no transfer can start any more. */
void accel_edu_fini(struct accel_dev *adev)
{
	struct pci_dev *pdev = adev->pdev;

	free_irq(pci_irq_vector(pdev, 0), adev);
	pci_free_irq_vectors(pdev);
	dma_free_coherent(&pdev->dev, PAGE_SIZE, adev->stage, adev->stage_dma);
}
