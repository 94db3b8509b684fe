from .reference import (transport_complex_exp_reference, transport_complex_reference,
                        transport_exp_reference, transport_reference)

__all__ = ["transport_reference", "transport_exp_reference", "transport_complex_reference",
           "transport_complex_exp_reference"]
