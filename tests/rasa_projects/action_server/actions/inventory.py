"""The stock the action server knows (``from actions.inventory import ...``)."""

IN_STOCK = {"kettle", "toaster", "blender"}


def is_in_stock(product):
    return product is not None and product.strip().lower() in IN_STOCK
