public enum KeysatDeliveryPlaceholder {}
