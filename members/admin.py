from django.contrib import admin

from members.models import Member, MemberSession


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["account_id", "loyalty_id", "first_name", "last_name", "email", "phone"]
    search_fields = ["account_id", "loyalty_id", "external_id", "email", "phone", "last_name"]
    readonly_fields = ["account_id", "created_at", "updated_at"]


@admin.register(MemberSession)
class MemberSessionAdmin(admin.ModelAdmin):
    list_display = ["correlation_id", "member", "channel", "created_at", "expires_at"]
    list_select_related = ["member"]
    search_fields = ["correlation_id"]
    raw_id_fields = ["member"]
