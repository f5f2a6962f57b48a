from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import Group

from accounts.models import User

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    full_name = factory.Faker("name")
    email_verified = True

    @factory.post_generation
    def password(obj: User, create: bool, extracted: str | None, **kwargs: Any) -> None:
        obj.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            obj.save(update_fields=["password"])

    @factory.post_generation
    def role(obj: User, create: bool, extracted: str | None, **kwargs: Any) -> None:
        if create:
            group = Group.objects.filter(name=extracted or "customer").first()
            if group:
                obj.groups.add(group)
